"""Patch features from a pretrained network: the fused feature map of RapidOCR's PP-OCR text
detector, pooled to the same 32-px patch grid as the glyph encoder.

The design notes ask whether a pretrained vision model's patch embeddings predict OCR quality.
ColPali's weights cannot be had offline, but the rapidocr wheel ships real pretrained PP-OCR
networks (ONNX) trained on text images. `PPOCRPatchEncoder` runs the detection model
(PP-OCRv6_det_small: a convolutional backbone, an FPN-style neck, a DB head) with ONNX Runtime,
and exposes the neck's fused feature map - the tensor "Concat.3", 96 channels at 1/4 of the
input resolution, the input of the DB head - as a second graph output by editing the model's
outputs with the `onnx` package in memory (the file on disk is never changed). Per 32-px patch:
the mean of each of the 96 channels over the patch's 8 x 8 cells, and three statistics of the
detector's own text-probability map (its mean, its max and the share of pixels above 0.3, DB's
binarisation threshold): 99 features. Pooled by colkern.patch_pool like every encoder.

The page runs at its own resolution (padded with white to a multiple of 32, the network's
stride), not rescaled as RapidOCR's pipeline does (shorter side to 736 px): the features then
describe the page's pixels on the same grid as the glyph and pixel encoders, and a model trained
on them must see pages at its training DPI, as for the others. Input normalisation is the
detector's own ((x / 255 - 0.5) / 0.5 on three identical grey channels).

Cost: about 0.5 s for a 620 x 875 px page (A6 at 150 dpi) on one core; ~2.8 s for A4 at 150 dpi.
Needs onnxruntime and rapidocr (its bundled model file); the graph is edited with the onnx package
when it is installed, else directly in the protobuf wire format (add_output_wire).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List, Tuple

import cv2
import numpy as np
import torch

from .patches import ImageLike, PatchFeatures, to_gray
from .tiled import TiledPatchEncoder, check_patch

DET_MODEL = "PP-OCRv6_det_small"
FEATURE_TENSOR = "Concat.3"   # the neck's fused map: 4 x 24 channels at stride 4
_STRIDE = 4
_PROB_THRESHOLD = 0.3         # DB's binarisation threshold (rapidocr Det.thresh)
_CHANNELS = 96
PPOCR_PROB_FEATURES = ("prob_mean", "prob_max", "prob_frac")


def det_model_path(name: str = DET_MODEL) -> str:
    """The detection model file bundled in the rapidocr wheel."""
    try:
        from importlib import resources

        path = resources.files("rapidocr") / "models" / f"{name}.onnx"
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"PPOCRPatchEncoder: rapidocr is not installed ({e}); "
                                  "pip install rapidocr onnxruntime onnx") from e
    if not path.is_file():
        raise FileNotFoundError(f"PPOCRPatchEncoder: the rapidocr wheel has no {name}.onnx at {path}")
    return str(path)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def add_output_wire(model_bytes: bytes, tensor: str) -> bytes:
    """`model_bytes` (a serialised onnx ModelProto) with `tensor` appended to the graph outputs, as a
    float tensor of unknown shape, edited in the protobuf wire format: the fallback when the onnx
    package is not installed. ModelProto.graph is field 7; GraphProto.output is the repeated field
    12 (ValueInfoProto: name = 1, type = 2; TypeProto.tensor_type = 1; Tensor.elem_type = 1,
    FLOAT = 1). Appending a repeated element at the end of its message is valid protobuf."""
    value_info = _field(1, tensor.encode()) + _field(2, _field(1, _varint(1 << 3 | 0) + _varint(1)))
    out, pos, found = bytearray(), 0, False
    while pos < len(model_bytes):
        start = pos
        key, pos = _read_varint(model_bytes, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(model_bytes, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n, body = _read_varint(model_bytes, pos)
            pos = body + n
            if num == 7:
                out += _field(7, model_bytes[body:pos] + _field(12, value_info))
                found = True
                continue
        else:
            raise ValueError(f"add_output_wire: unsupported wire type {wire} in the model")
        out += model_bytes[start:pos]
    if not found:
        raise ValueError("add_output_wire: the model has no graph")
    return bytes(out)


@functools.lru_cache(maxsize=4)
def _session(path: str, tensor: str, threads: int, use_onnx: bool = True):
    """(ONNX Runtime session over the model with `tensor` added to the graph outputs, input
    name, name of the model's own output). The graph is edited with the onnx package when it is
    installed (use_onnx), else in the protobuf wire format (add_output_wire)."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"PPOCRPatchEncoder needs onnxruntime ({e}); pip install onnxruntime") from e
    try:
        import onnx
    except ModuleNotFoundError:
        onnx = None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if onnx is not None and use_onnx:
        model = onnx.load(path)
        produced = {o for node in model.graph.node for o in node.output}
        if tensor not in produced:
            raise ValueError(f"PPOCRPatchEncoder: {os.path.basename(path)} has no tensor {tensor!r}")
        if tensor not in [o.name for o in model.graph.output]:
            model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
        data = model.SerializeToString()
    else:
        with open(path, "rb") as f:
            data = add_output_wire(f.read(), tensor)
    try:
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT rejects an output no node produces
        raise ValueError(f"PPOCRPatchEncoder: {os.path.basename(path)} has no tensor {tensor!r} ({e})") from None
    outputs = [o.name for o in sess.get_outputs()]
    return sess, sess.get_inputs()[0].name, outputs[0]


class PPOCRPatchEncoder(TiledPatchEncoder):
    """Per-patch features of the PP-OCR detector's fused feature map (see the module docstring).

    patch: patch side in pixels, a multiple of 32 (default 32, the glyph encoder's grid).
    threads: ONNX Runtime intra-op threads (not part of params(): it does not change the output
    beyond float rounding).
    encode(image) -> PatchFeatures(features float32 [rows * cols, 99], grid, patch, content),
    grid ceil(H / patch) x ceil(W / patch); content: patches holding Otsu ink (> 0.5% of pixels).
    """

    name = "ppocr"
    has_content_mask = True

    def __init__(self, patch: int = 32, *, model: str = DET_MODEL, layer: str = FEATURE_TENSOR,
                 threads: int = 1):
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"PPOCRPatchEncoder: threads must be a positive int, got {threads!r}")
        self.patch = check_patch("PPOCRPatchEncoder", patch, multiple_of=32, minimum=32)
        self.model, self.layer, self.threads = model, layer, threads

    def params(self) -> Dict[str, Any]:
        return {"patch": self.patch, "model": self.model, "layer": self.layer}

    def feature_names(self) -> List[str]:
        return [f"c{i:02d}" for i in range(_CHANNELS)] + list(PPOCR_PROB_FEATURES)

    def encode(self, image: ImageLike) -> PatchFeatures:
        gray = to_gray(image)
        H, W = gray.shape
        P = self.patch
        rows, cols = self.grid_for(H, W)
        padded = np.ones((rows * P, cols * P), np.float32)  # white paper beyond the page
        padded[:H, :W] = gray
        x = (padded - 0.5) / 0.5
        x = np.ascontiguousarray(np.broadcast_to(x, (1, 3) + x.shape), dtype=np.float32)
        sess, inp, prob_name = _session(det_model_path(self.model), self.layer, self.threads)
        prob, fmap = sess.run([prob_name, self.layer], {inp: x})
        c = P // _STRIDE
        fmap = torch.from_numpy(fmap[0])                      # [96, rows * c, cols * c]
        if fmap.shape[0] != _CHANNELS or fmap.shape[1:] != (rows * c, cols * c):
            raise RuntimeError(f"PPOCRPatchEncoder: unexpected feature map shape {tuple(fmap.shape)}")
        feats = torch.nn.functional.avg_pool2d(fmap[None], c)[0]        # [96, rows, cols]
        prob = torch.from_numpy(prob[0, 0])[None, None]                  # [1, 1, rows * P, cols * P]
        p_mean = torch.nn.functional.avg_pool2d(prob, P)[0, 0]
        p_max = torch.nn.functional.max_pool2d(prob, P)[0, 0]
        p_frac = torch.nn.functional.avg_pool2d((prob > _PROB_THRESHOLD).float(), P)[0, 0]
        cols_ = torch.cat([feats, p_mean[None], p_max[None], p_frac[None]], 0)   # [99, rows, cols]
        features = cols_.reshape(cols_.shape[0], rows * cols).T.contiguous().to(torch.float32)
        return PatchFeatures(features, (rows, cols), P, _ink_content(padded, rows, cols, P))


def _ink_content(gray: np.ndarray, rows: int, cols: int, P: int) -> torch.Tensor:
    """bool [rows * cols]: patches whose Otsu-binarised ink covers more than 0.5% of the pixels
    (the glyph encoder's rule, without its component centroids)."""
    u8 = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
    _, ink = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    share = ink.reshape(rows, P, cols, P).mean(axis=(1, 3), dtype=np.float64).reshape(-1)
    return torch.from_numpy(share > 0.005)
