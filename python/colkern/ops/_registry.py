"""The `colkern` operator library: each op is defined here once, with its CPU, CUDA and fake
kernels, by one call of define_op from its module.

Why not torch.library.custom_op: it wraps every kernel in torch._disable_dynamo, whose first call
imports torch._dynamo, so the first eager call of any op took seconds. Kernels registered on a
Library are called by the dispatcher directly. What custom_op added besides is kept: the
pt2_compliant tag, a fake impl for torch.compile, and an Autograd kernel (a backward formula, or
one that refuses to differentiate).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

# The library must live as long as the process: its ops are deregistered when it is collected.
_LIB = torch.library.Library("colkern", "DEF")


def define_op(schema: str, *, cpu: Callable, cuda: Callable, fake: Callable,
              backward: Optional[Callable] = None, setup_context: Optional[Callable] = None) -> None:
    """Defines torch.ops.colkern.<name> from `schema` ("name(Tensor x, SymInt k) -> Tensor").

    cpu / cuda: the kernels, called with the op's arguments; fake: the same on fake tensors
    (shapes and dtypes only). backward / setup_context: as torch.library.register_autograd;
    without them, backward through the op raises.
    """
    name = schema.split("(", 1)[0]
    qualname = f"colkern::{name}"
    _LIB.define(schema, tags=(torch.Tag.pt2_compliant_tag,))
    _LIB.impl(name, cpu, "CPU")
    _LIB.impl(name, cuda, "CUDA")
    torch.library.register_fake(qualname, fake, lib=_LIB)
    torch.library.register_autograd(qualname, backward or _not_differentiable(qualname),
                                    setup_context=setup_context, lib=_LIB)


def _not_differentiable(qualname: str) -> Callable:
    def backward(ctx, *grads):
        raise RuntimeError(f"{qualname} is not differentiable")

    return backward
