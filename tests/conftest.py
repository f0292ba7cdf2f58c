"""Shared test fixtures: the ISA levels this machine can run, and the tolerance table."""
import pytest
import torch

import colkern

# Error floor per input dtype, relative to (1 + |score|). The kernel's error against an fp64
# reference on the same (already rounded) inputs must stay within
#     2 * (error of the same-dtype torch computation) + FLOOR[dtype] * (1 + |score|).
# Inputs are rounded once (bf16/fp16); all products and sums are fp32, so the floors are fp32
# rounding over D-term dot products and Lq-term sums, with margin.
FLOOR = {
    torch.float32: 2e-6,
    torch.float16: 2e-6,
    torch.bfloat16: 2e-6,
}
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _runnable_isas():
    info = colkern.backend_info()
    order = ["scalar", "avx2", "avx512"]
    best = order.index(info["cpu_isa_detected"])
    return [i for i in order[: best + 1] if i in info["cpu_isa_compiled"]]


ISAS = _runnable_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test once per ISA level this CPU supports (scalar is always among them)."""
    with colkern.use_isa(request.param) as active:
        assert active == request.param
        yield active


def assert_close_to_reference(got, ref64, same_dtype_torch, dtype, magnitude=None):
    """got / same_dtype_torch: float32 results; ref64: float64 reference on the same inputs.

    magnitude: the size of the terms summed, when it exceeds |score| (scores of +-1 documents
    add maxima of both signs, so the score can be far smaller than the dot products behind it);
    the floor is relative to it. Defaults to |score|."""
    got, ref64, torch_res = got.double(), ref64.double(), same_dtype_torch.double()
    assert got.shape == ref64.shape
    nan = torch.isnan(ref64)
    assert torch.equal(torch.isnan(got), nan), "NaN pattern differs from the reference"
    fin = ~nan
    torch_err = (torch_res[fin] - ref64[fin]).abs()
    size = ref64.abs() if magnitude is None else magnitude.double().expand_as(ref64)
    bound = 2 * torch_err + FLOOR[dtype] * (1 + size[fin])
    err = (got[fin] - ref64[fin]).abs()
    worst = (err - bound).max() if err.numel() else torch.tensor(-1.0)
    assert bool((err <= bound).all()), f"max error {err.max():.3g} exceeds bound by {worst:.3g}"


def write_text_pdf(path, texts):
    """A PDF with one 300 x 420 pt page per string: the text, and a filled box below it (an
    image-like region for the page router and the renderers)."""
    import pymupdf

    doc = pymupdf.open()
    for t in texts:
        page = doc.new_page(width=300, height=420)
        page.insert_text((30, 60), t, fontsize=16)
        page.draw_rect(pymupdf.Rect(30, 100, 270, 200), color=(0.2, 0.2, 0.6), fill=(0.8, 0.8, 1))
    doc.save(path)
    doc.close()
