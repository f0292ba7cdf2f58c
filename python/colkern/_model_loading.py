"""What every model wrapper checks before loading (ColPali, SigLIP, the colpali-engine drop-in):
a local model directory, a device, a dtype and a batch size, each with an error naming the
owner and the argument. Defined once here so the encoders' messages and defaults cannot drift.

torch is imported lazily: this base module is also used by torch-free paths (directory checks).
"""
from __future__ import annotations

from pathlib import Path

from ._types import PathLike


def check_local_model_dir(model_path: PathLike, kind: str) -> Path:
    """-> `model_path` as a Path after checking that it is an existing directory. kind ("ColPali",
    "SigLIP") names the model in the errors. colkern never looks models up on the hub, so a
    missing directory is the user's to download; the message says so."""
    path = Path(model_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{kind} model directory {path} does not exist (colkern loads models from a "
                                f"local directory only; download the checkpoint first)")
    if not path.is_dir():
        raise FileNotFoundError(f"{kind} model path {path} is not a directory (pass the directory holding "
                                f"config.json and the weights)")
    return path


def check_positive_int(value, owner: str, name: str) -> int:
    """-> value, after checking that it is a positive int (bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def check_texts(texts, owner: str) -> list:
    """-> texts as a list, after checking it is a sequence of str (one bare str is refused: it
    would be read as a list of characters)."""
    if isinstance(texts, str):
        raise TypeError(f"{owner}: texts must be a list of strings, got one str (wrap it in a list)")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{owner}: texts[{i}] must be a str, got {type(t).__name__}")
    return texts


def resolve_device(device):
    """None -> CUDA when available, else the CPU; anything else -> torch.device(device)."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype, device, owner: str):
    """None -> bf16 on CUDA, fp32 elsewhere: bf16 is what the models were trained in and what GPUs
    run fast; CPUs without native bf16 matmuls (and torch's CPU kernels in general) are fastest
    and exact in fp32. A name ("bf16", "float32", ...) or a float torch.dtype is taken as given."""
    import torch

    by_name = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
               "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in by_name:
            raise ValueError(f"{owner}: dtype must be one of {sorted(by_name)} or a torch.dtype, got {dtype!r}")
        return by_name[dtype]
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"{owner}: dtype must be float32, bfloat16 or float16, got {dtype}")
    return dtype


class TorchModelProperties:
    """The device and dtype of a wrapper's `model` (a torch.nn.Module), read from its parameters
    so they stay true after a `.to(...)`."""

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype
