"""The immutable files of a sharded index, in the container of colkern.retrieval.index_format.

A shard file holds N documents (T token vectors) as arrays:
    offsets       int64 [N+1]     document n = rows offsets[n]:offsets[n+1]
    bits          uint8 [T, ceil(D/8)]  sign bits of x - mean (centred; pack_bits order)
    floats        [T, D] float16/float32/bfloat16, when the index keeps floats
    codes         int32 [T]       each token's centroid in the index's codebook
    list_offsets  int64 [K+1], list_docs int32 [P]: inverted lists, centroid -> sorted local
                  documents with a token of that code (no duplicates)
and in the JSON header the ids, the per-document metadata and the SHA-256 of the codebook whose
codes it holds. A codebook file is the same container with no documents and the arrays
centroids float32 [K, D], mean float32 [D], and for a two-level codebook coarse float32 [K1, D]
+ coarse_offsets int64 [K1+1]; its header holds the bit scale.

Centred binarisation. Real embeddings share a common mean direction m: most coordinates of x
have the sign of m's, so sign(x) carries little information about x. The shards store
b = sign bits of (x - m) instead. For a query token q, with u = m / |m| and q_perp = q - (q.u) u,

    q . x = q . (x - m) + q . m                       (exact)
          = q_perp . (x - m) + (q . u)(u . x)          (exact: q_perp . m = 0)

q . m does not depend on the document token, so max_j q . x_j = max_j q . (x_j - m) + q . m and
MaxSim(Q, X) = MaxSim(Q, X - m) + sum_i q_i . m: ranking against the centred vectors is exact.
The float x bits stage approximates x - m by scale * (2b - 1) (scale = mean |x - m|, the
least-squares scale of a sign code). That code has a component along u which x - m lacks
(sign vectors are not orthogonal to u), and an unprojected query multiplies it by its large
q . u, which swamps the signal. So the query side is folded: the bits are scored with q_perp,
and u . x, which varies little across tokens when the common component dominates, is taken as
its mean |m|: estimate(q, x) = scale * q_perp . (2b - 1) + q . m. Measured (tests and
benchmarks/search_at_scale.py): with a strong common mean, float x bits recall@10 rises from
0.24 (raw bits) to 0.72; without one, centring changes nothing. Reported bits scores are
scale * maxsim_bits_pm1(Q_perp, b) + sum_i q_i . m, on the scale of exact float MaxSim. The
float vectors are stored uncentred, so float rescoring is exact MaxSim.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import torch
from torch import Tensor

from ..ops import pack_bits
from .centroids import Codebook, assign, inverted_lists
from .index_format import FLOAT_DTYPE_NAMES, IndexFormatError, bits_row_bytes, read_index_file, write_index_file
from .prefetch import prefetch_whole

KIND = "colkern.Index shard"
CODEBOOK_KIND = "colkern.Index codebook"
_BLOCK = 1 << 18  # rows binarised / assigned per step: bounds the fp32 temporaries to 128 MiB at D = 128


def encode(values: Tensor, offsets: Tensor, codebook: Codebook,
           float_dtype: Optional[torch.dtype]) -> Dict[str, Tensor]:
    """The arrays of a shard for float vectors values [T, D] with offsets [N+1] (block by block,
    so a shard of many millions of vectors needs little memory beyond its own arrays)."""
    T = values.shape[0]
    bits = torch.empty(T, bits_row_bytes(values.shape[1]), dtype=torch.uint8)
    codes = torch.empty(T, dtype=torch.int32)
    for lo in range(0, T, _BLOCK):
        x = values[lo:lo + _BLOCK].float()
        codes[lo:lo + _BLOCK] = assign(codebook, x)
        bits[lo:lo + _BLOCK] = pack_bits((x - codebook.mean).contiguous())
    arrays = {"offsets": offsets.contiguous(), "bits": bits}
    if float_dtype is not None:
        arrays["floats"] = values.to(float_dtype).contiguous()
    arrays["codes"] = codes
    arrays["list_offsets"], arrays["list_docs"] = inverted_lists(codes, offsets, codebook.num_centroids)
    return arrays


def write_shard(path: str, arrays: Dict[str, Tensor], *, dim: int, ids: List[str], metadata: Optional[List[dict]],
                codebook_sha256: str) -> str:
    """Writes one shard file atomically. -> the file's SHA-256 (recorded in the manifest)."""
    floats = arrays.get("floats")
    order = ["offsets", "bits"] + (["floats"] if floats is not None else []) + ["codes", "list_offsets", "list_docs"]
    fields = {"kind": KIND, "dim": dim, "num_docs": len(ids), "num_vectors": arrays["bits"].shape[0],
              "float_dtype": str(floats.dtype).replace("torch.", "") if floats is not None else None,
              "bits_dtype": "uint8", "num_centroids": arrays["list_offsets"].numel() - 1,
              "codebook_sha256": codebook_sha256, "metadata": metadata, "ids": ids}
    write_index_file(path, [(name, arrays[name]) for name in order], fields)
    return read_index_file(path, mmap=True, verify=False, extra=True)[0]["sha256"]


class Shard:
    """One opened shard: arrays view a read-only mapping of the file (nothing of the payload is
    read at open beyond the offsets); ids and metadata come from the header."""

    def __init__(self, path: str, meta: dict, arrays: Dict[str, Tensor]):
        self.path = path
        self.sha256: str = meta["sha256"]
        self.ids: List[str] = meta["ids"]
        self.metadata: Optional[List[dict]] = meta.get("metadata")
        self.offsets = arrays["offsets"]
        self.bits = arrays["bits"]
        self.floats: Optional[Tensor] = arrays.get("floats")
        self.codes = arrays["codes"]
        self.list_offsets = arrays["list_offsets"]
        self.list_docs = arrays["list_docs"]
        self.starts = self.offsets[:-1].contiguous()
        self.lengths = (self.offsets[1:] - self.offsets[:-1]).contiguous()

    @property
    def num_docs(self) -> int:
        return len(self.ids)

    @property
    def num_vectors(self) -> int:
        return self.bits.shape[0]

    @classmethod
    def open(cls, path: str, entry: dict, *, dim: int, float_dtype: Optional[str], codebook_sha256: str,
             num_centroids: int, verify: bool) -> "Shard":
        """Maps the shard file and checks it is the one the manifest `entry` committed."""
        if not os.path.isfile(path):
            raise IndexFormatError(f"Index: shard file {path!r} listed in the manifest is missing")
        meta, arrays = read_index_file(path, mmap=True, verify=verify, extra=True)
        T, N = meta["num_vectors"], meta["num_docs"]
        want = {"sha256": entry["sha256"], "kind": KIND, "dim": dim, "float_dtype": float_dtype,
                "num_docs": entry["num_docs"], "num_vectors": entry["num_vectors"],
                "codebook_sha256": codebook_sha256, "num_centroids": num_centroids}
        for key, value in want.items():
            if meta.get(key) != value:
                raise IndexFormatError(f"Index: shard file {path!r} does not match the manifest: {key} is "
                                       f"{meta.get(key)!r}, expected {value!r}")
        shapes = {"codes": ("int32", [T]), "list_offsets": ("int64", [num_centroids + 1]),
                  "list_docs": ("int32", None)}
        for name, (dtype, shape) in shapes.items():
            spec = meta["arrays"].get(name)
            if spec is None or spec["dtype"] != dtype or (shape is not None and list(spec["shape"]) != shape) \
                    or len(spec["shape"]) != 1:
                raise IndexFormatError(f"Index: shard file {path!r} is corrupt: array {name!r} missing or of the wrong "
                                       f"dtype / shape")
        lo = arrays["list_offsets"]
        if int(lo[0]) != 0 or int(lo[-1]) != arrays["list_docs"].numel() or bool((lo[1:] < lo[:-1]).any()):
            raise IndexFormatError(f"Index: shard file {path!r} is corrupt: inverted-list offsets out of range")
        md = meta.get("metadata")
        if md is not None and (not isinstance(md, list) or len(md) != N):
            raise IndexFormatError(f"Index: shard file {path!r} is corrupt: metadata is not a list of {N} objects")
        # The inverted lists (4 bytes per vector, about 1.5% of a shard) are read by every query's
        # candidate stage, a few hundred scattered lists each: ask for all of them now, in the
        # background, so the first queries after an open do not fault them in one by one (at
        # 100M vectors from a dropped page cache: 142 ms median per query instead of 182 ms).
        prefetch_whole(arrays["list_docs"])
        return cls(path, meta, arrays)


def write_codebook(path: str, cb: Codebook) -> str:
    """Writes the codebook file atomically -> its SHA-256."""
    D = cb.dim
    arrays = [("offsets", torch.zeros(1, dtype=torch.int64)),
              ("bits", torch.empty(0, bits_row_bytes(D), dtype=torch.uint8)),
              ("centroids", cb.centroids.float().contiguous()), ("mean", cb.mean.float().contiguous())]
    if cb.coarse is not None:
        arrays += [("coarse", cb.coarse.float().contiguous()), ("coarse_offsets", cb.coarse_offsets.contiguous())]
    fields = {"kind": CODEBOOK_KIND, "dim": D, "num_docs": 0, "num_vectors": 0, "float_dtype": None,
              "bits_dtype": "uint8", "num_centroids": cb.num_centroids, "scale": cb.scale, "ids": []}
    write_index_file(path, arrays, fields)
    return read_index_file(path, mmap=True, verify=False, extra=True)[0]["sha256"]


def read_codebook(path: str, sha256: str, dim: int) -> Codebook:
    """Reads (and always verifies: it is small) the codebook file the manifest references."""
    if not os.path.isfile(path):
        raise IndexFormatError(f"Index: codebook file {path!r} listed in the manifest is missing")
    meta, a = read_index_file(path, mmap=False, verify=True, extra=True)
    if meta["sha256"] != sha256 or meta.get("kind") != CODEBOOK_KIND or meta["dim"] != dim:
        raise IndexFormatError(f"Index: codebook file {path!r} does not match the manifest")
    K = meta["num_centroids"]
    try:
        assert tuple(a["centroids"].shape) == (K, dim) and tuple(a["mean"].shape) == (dim,)
        coarse, offs = a.get("coarse"), a.get("coarse_offsets")
        if coarse is not None:
            assert offs is not None and coarse.shape[1] == dim and offs.numel() == coarse.shape[0] + 1
            assert int(offs[0]) == 0 and int(offs[-1]) == K and bool((offs[1:] >= offs[:-1]).all())
    except (AssertionError, KeyError):
        raise IndexFormatError(f"Index: codebook file {path!r} is corrupt: bad array shapes") from None
    return Codebook(a["centroids"], a["mean"], float(meta["scale"]), coarse, offs)


def float_dtype_of(name: Optional[str]) -> Optional[torch.dtype]:
    return None if name is None else FLOAT_DTYPE_NAMES[name]
