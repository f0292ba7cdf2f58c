"""Sign-bit packing on CUDA (Triton): the binary quantisation of colkern/ops/bits.py.

    pack_bits_triton(x [R, D]) -> uint8 [R, ceil(D/8)]

Bits follow numpy.packbits: bit = x > 0, MSB first within each byte, ceil(D / 8) bytes per
vector, padding bits 0. The reference is colkern.ops.bits.pack_bits_ref.
"""
from __future__ import annotations

from typing import List

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._aot import TL_DTYPES, compile_all, main

# Tiling: a program packs BLOCK_R rows x BLOCK_B bytes, read as one [BLOCK_R, BLOCK_B, 8] tile
# (~_TILE elements: 32 fp32 registers per thread at 4 warps). Rows are contiguous in memory, so
# the tile is a coalesced load; short vectors get more rows.
_TILE = 4096
_MAX_BLOCK_B = 64
_NUM_WARPS = 4


@triton.jit
def _pack_bits_kernel(x_ptr, out_ptr, R, D, NB, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # rows on axis 0: R may be huge
    byts = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    bit = tl.arange(0, 8)
    cols = byts[None, :, None] * 8 + bit[None, None, :]  # [1, BLOCK_B, 8] input columns
    row_ok = rows < R
    rows64 = rows.to(tl.int64)  # R * D may exceed int32
    x = tl.load(x_ptr + rows64[:, None, None] * D + cols,
                mask=row_ok[:, None, None] & (cols < D), other=0.0)
    # Compared in fp32: exact for every input dtype, free on a GPU, and right in the interpreter,
    # which holds bf16 as raw bit patterns (a negative bf16 would compare > 0 there). -0.0 and
    # NaN give bit 0, padding columns (loaded as 0) too.
    b = (x.to(tl.float32) > 0).to(tl.int32)
    # MSB first: column 8k + j carries weight 2^(7 - j) in byte k; the distinct powers sum to an OR.
    byte = tl.sum(b << (7 - bit)[None, None, :], axis=2)
    tl.store(out_ptr + rows64[:, None] * NB + byts[None, :], byte.to(tl.uint8),
             mask=row_ok[:, None] & (byts < NB)[None, :])


def _pack_config(D: int) -> dict:
    nb = (D + 7) // 8
    block_b = min(_MAX_BLOCK_B, triton.next_power_of_2(nb))
    return dict(BLOCK_R=max(1, _TILE // (8 * block_b)), BLOCK_B=block_b)


def pack_bits_triton(x: Tensor) -> Tensor:
    """Sign bits of x packed 8 per byte (bit = x > 0, MSB first, padding bits 0).

    x: [R, D] contiguous, float32 / float16 / bfloat16 (callers flatten leading dims).
    -> uint8 [R, ceil(D/8)], on x's device.
    """
    R, D = x.shape
    NB = (D + 7) // 8
    out = torch.empty(R, NB, dtype=torch.uint8, device=x.device)
    if R == 0 or D == 0:
        return out  # an empty grid cannot be launched, and there is nothing to compute
    cfg = _pack_config(D)
    grid = (triton.cdiv(R, cfg["BLOCK_R"]), triton.cdiv(NB, cfg["BLOCK_B"]))
    _pack_bits_kernel[grid](x, out, R, D, NB, num_warps=_NUM_WARPS, **cfg)
    return out


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation (see _aot.py)


def aot_compile_all(arch: int) -> List[str]:
    """Compiles _pack_bits_kernel for CUDA sm_`arch`, per dtype, with one and several byte
    blocks. Raises on any lowering error; returns one line per compiled variant."""
    variants = []
    # One byte block of a short / medium vector, and several 64-byte blocks (D = 1024).
    for dtype, D in [(torch.float16, 7), (torch.bfloat16, 130), (torch.float32, 1024)]:
        tl_name = TL_DTYPES[dtype]
        sig = {"x_ptr": f"*{tl_name}", "out_ptr": "*u8", "R": "i32", "D": "i32", "NB": "i32"}
        variants.append((_pack_bits_kernel, f"_pack_bits_kernel sm_{arch} {tl_name} D={D}", sig,
                         _pack_config(D)))
    return compile_all(arch, variants, _NUM_WARPS)


if __name__ == "__main__":  # python -m colkern.triton_kernels.pack_bits 80 90
    main(aot_compile_all)
