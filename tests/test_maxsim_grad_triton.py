"""The Triton training kernels (kernels/maxsim_backward.py) under the Triton interpreter: the
argmax forward and the scatter backward against the CPU op and the pure-torch reference, with the
same tie, NaN and mask rules; and their ahead-of-time compile for sm_80 / sm_90."""
import os

# Must precede the kernel module's import: @triton.jit reads it when the kernel is defined.
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from triton_support import aot_compile, load_interpreted, packed  # noqa: E402

from colkern.ops.maxsim_backward import argmax_rows_ref, backward_rows_ref  # noqa: E402

pytest.importorskip("triton")

K = load_interpreted("maxsim_backward", "_maxsim_argmax_kernel", "_maxsim_backward_kernel")
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("Lq, D, lengths", [(17, 130, (1, 3, 0, 97)), (3, 8, (65, 1, 17))])
def test_argmax_and_backward_match_reference(dtype, Lq, D, lengths):
    g = torch.Generator().manual_seed(Lq)
    Q = torch.randn(2, Lq, D, generator=g).to(dtype)
    v, s, l = packed([torch.randn(L, D, generator=g).to(dtype) for L in lengths])
    qm = torch.rand(2, Lq, generator=g) > 0.3
    scores, argmax = K.maxsim_argmax_triton(Q, qm, v, s, l)
    ref_scores, ref_argmax = argmax_rows_ref(Q, qm, v, s, l)
    assert torch.equal(argmax, ref_argmax)
    torch.testing.assert_close(scores, ref_scores.float(), rtol=1e-5, atol=1e-4)
    grad = torch.randn(2, len(lengths), generator=g)
    dq, dv = K.maxsim_backward_triton(grad, Q, v, s, argmax)
    ref_dq, ref_dv = backward_rows_ref(grad, Q, qm, v, s, l, ref_argmax, torch.float64)
    torch.testing.assert_close(dq.double(), ref_dq, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dv.double(), ref_dv, rtol=1e-5, atol=1e-5)
    # The CPU op takes the same argmax and gives the same gradients.
    cpu_dq, cpu_dv = torch.ops.colkern.maxsim_backward(grad, Q, qm, v, s, l, argmax)
    torch.testing.assert_close(cpu_dq.double(), ref_dq.to(dtype).double(), rtol=1e-2, atol=1e-2)


def test_ties_across_blocks_and_nan():
    """Duplicates in a later 64-row block lose to the first copy; the first NaN row wins."""
    g = torch.Generator().manual_seed(9)
    Q = torch.randn(1, 4, 16, generator=g)
    base = torch.randn(70, 16, generator=g)
    doc = torch.cat([base, base])  # row j + 70 ties row j, in another block
    nan_doc = torch.randn(80, 16, generator=g)
    nan_doc[66, 2] = float("nan")
    nan_doc[70, 0] = float("nan")
    v, s, l = packed([doc, nan_doc])
    scores, argmax = K.maxsim_argmax_triton(Q, None, v, s, l)
    assert bool((argmax[0, :, 0] < 70).all())
    assert bool((argmax[0, :, 1] == 66).all()) and torch.isnan(scores[0, 1])


def test_aot_compile_sm80_sm90(tmp_path):
    outs = aot_compile(tmp_path, "maxsim_backward")
    for arch in ("sm_80", "sm_90"):
        assert outs[arch].count("_maxsim_argmax_kernel") == 4, outs[arch]
        assert outs[arch].count("_maxsim_backward_kernel") == 4, outs[arch]
