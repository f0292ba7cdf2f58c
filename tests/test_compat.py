"""colkern.colpali.engine: score_multi_vector against colpali-engine's own, and patching colpali-engine.
Mirrors python/colkern/compat.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from colkern import maxsim_ref
from colkern.colpali._torchvision_compat import apply_torchvision_shim
from colkern.colpali.engine import (
    is_colpali_engine_patched,
    patch_colpali_engine,
    score_multi_vector,
    unpatch_colpali_engine,
)

apply_torchvision_shim()  # colpali-engine needs it next to a CPU-only torch; no-op elsewhere
pytest.importorskip("colpali_engine")

from colpali_engine.models import ColPaliProcessor  # noqa: E402
from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor  # noqa: E402

ORIGINAL = BaseVisualRetrieverProcessor.__dict__["score_multi_vector"]


def colpali_engine_scores(qs, ps, batch_size=128):
    """colpali-engine's own scoring, on the CPU (its `auto` device here)."""
    assert BaseVisualRetrieverProcessor.__dict__["score_multi_vector"] is ORIGINAL
    return BaseVisualRetrieverProcessor.score_multi_vector(qs, ps, batch_size=batch_size, device="cpu")


def exact_scores(qs, ps):
    """fp64 MaxSim with padding (all-zero rows) excluded."""
    Q = pad_sequence(list(qs), batch_first=True)
    return maxsim_ref(Q, [p[p.ne(0).any(1)] for p in ps], q_mask=Q.ne(0).any(-1))


@pytest.fixture(scope="module")
def tiny():
    """(model, processor) of the tiny random ColPali, in memory."""
    from colkern.testing import make_tiny_colpali

    return make_tiny_colpali(seed=0)


@pytest.fixture(autouse=True)
def restore_colpali_engine(monkeypatch):
    monkeypatch.delenv("COLPALI_SCORES_BACKEND", raising=False)  # colpali-engine's default, `auto`
    yield
    unpatch_colpali_engine()


def clustered(n, lengths, centres, rng, noise=0.7):
    """n ragged unit-norm multi-vectors whose tokens lie around 3 of the centres each (noise:
    the norm of the offset from the centre), as real ColPali embeddings cluster around a
    page's content. Make the centres share a common direction: trained embedding spaces are
    anisotropic (unrelated tokens still have a positive cosine)."""
    out = []
    dim = centres.shape[1]
    for _ in range(n):
        L = int(rng.integers(*lengths))
        picks = centres[torch.from_numpy(rng.choice(len(centres), size=3, replace=False))]
        offsets = torch.from_numpy(rng.standard_normal((L, dim))).float() * (noise / dim ** 0.5)
        out.append(F.normalize(picks[torch.from_numpy(rng.integers(0, 3, L))] + offsets, dim=-1))
    return out


def random_unit(n, lengths, dim, gen, dtype=torch.float32):
    out = []
    for L in torch.randint(*lengths, (n,), generator=gen).tolist():
        out.append(F.normalize(torch.randn(L, dim, generator=gen), dim=-1).to(dtype))
    return out


# ---------------------------------------------------------------------------------------------
# colpali_padding=True reproduces colpali-engine


@pytest.mark.parametrize("batch_size", [1, 4, 7, 128])
def test_padding_mode_matches_colpali_engine(batch_size):
    gen = torch.Generator().manual_seed(batch_size)
    qs = random_unit(9, (1, 20), 32, gen)
    ps = random_unit(23, (1, 40), 32, gen)
    ours = score_multi_vector(qs, ps, batch_size, colpali_padding=True)
    theirs = colpali_engine_scores(qs, ps, batch_size)
    assert ours.dtype == torch.float32 and ours.device.type == "cpu" and ours.shape == (9, 23)
    torch.testing.assert_close(ours, theirs, atol=2e-6, rtol=1e-6)


def test_padding_mode_matches_colpali_engine_on_padded_tensors_and_unbound_rows():
    gen = torch.Generator().manual_seed(1)
    qs = random_unit(5, (3, 12), 16, gen)
    ps = random_unit(11, (2, 30), 16, gen)
    Q, P = pad_sequence(qs, batch_first=True), pad_sequence(ps, batch_first=True)
    for q_in, p_in in [(Q, P), (list(Q.unbind()), list(P.unbind())), (qs, P), (Q, ps)]:
        torch.testing.assert_close(score_multi_vector(q_in, p_in, 4, colpali_padding=True),
                                   colpali_engine_scores(q_in, p_in, 4), atol=2e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_padding_mode_half_precision_within_colpali_engine_rounding(dtype):
    gen = torch.Generator().manual_seed(2)
    qs = random_unit(4, (5, 15), 64, gen, dtype)
    ps = random_unit(13, (5, 50), 64, gen, dtype)
    ours = score_multi_vector(qs, ps, 5, colpali_padding=True)
    theirs = colpali_engine_scores(qs, ps, 5)  # summed in `dtype` by colpali-engine
    eps = torch.finfo(dtype).eps
    # colpali-engine rounds every dot product and the final sum to `dtype`; colkern accumulates
    # in fp32. The gap is bounded by a few `dtype` ulps of the score's terms.
    terms = max(q.shape[0] for q in qs)
    assert ((ours - theirs).abs() <= 4 * eps * terms).all()


# ---------------------------------------------------------------------------------------------
# The default mode is exact


def floor_case():
    """One query of two tokens; a one-row passage every similarity of which is negative (-0.5
    per token: exact score -1), and a longer passage (exact score 0) in the same chunk."""
    e = torch.eye(4)
    short = torch.tensor([[-0.5, -0.5, 0.5, 0.5]])
    long = torch.stack([e[2], e[3], -e[0]])  # per token: max(0, 0, -1) = 0 and max(0, 0, 0) = 0
    return [e[:2]], [short, long]


def test_default_mode_is_exact_where_colpali_engine_floors_at_zero():
    q, ps = floor_case()
    exact = score_multi_vector(q, ps)
    engine = colpali_engine_scores(q, ps)
    assert exact.tolist() == [[-1.0, 0.0]]
    assert engine.tolist() == [[0.0, 0.0]]    # the short doc's padding floors both tokens at 0
    torch.testing.assert_close(exact, exact_scores(q, ps))
    assert score_multi_vector(q, ps, colpali_padding=True).tolist() == engine.tolist()
    # in chunks of one nothing is padded: colpali-engine is exact there too
    assert colpali_engine_scores(q, ps, batch_size=1).tolist() == exact.tolist()


def test_default_mode_ignores_zero_rows_inside_items():
    # list(torch.unbind(model(**batch))) keeps ColPali's zeroed padding rows in every item
    gen = torch.Generator().manual_seed(3)
    qs = random_unit(3, (4, 9), 24, gen)
    ps = [-p for p in random_unit(6, (3, 10), 24, gen)]
    padded_ps = list(pad_sequence(ps, batch_first=True).unbind())
    padded_qs = list(pad_sequence(qs, batch_first=True).unbind())
    exact = score_multi_vector(qs, ps)
    torch.testing.assert_close(score_multi_vector(padded_qs, padded_ps), exact)
    torch.testing.assert_close(score_multi_vector(pad_sequence(qs, batch_first=True),
                                                  pad_sequence(ps, batch_first=True)), exact)
    torch.testing.assert_close(exact, exact_scores(qs, ps), atol=2e-6, rtol=0)


def test_default_mode_matches_the_fp64_reference_on_ragged_input():
    gen = torch.Generator().manual_seed(4)
    qs = random_unit(7, (1, 33), 128, gen)
    ps = random_unit(97, (1, 60), 128, gen)
    ps[3], ps[50] = ps[3][:0], ps[50][:0]  # empty passages score 0
    got = score_multi_vector(qs, ps)
    torch.testing.assert_close(got, exact_scores(qs, ps), atol=2e-6, rtol=2e-6)
    empty = [i for i, p in enumerate(ps) if p.shape[0] == 0]
    assert empty and bool((got[:, empty] == 0).all())


def test_bad_input():
    q, p = [torch.randn(3, 8)], [torch.randn(4, 8)]
    with pytest.raises(ValueError, match="No queries provided"):
        score_multi_vector([], p)
    with pytest.raises(ValueError, match="No passages provided"):
        score_multi_vector(q, [])
    with pytest.raises(ValueError, match=r"ps must be a list .* shape \(4, 8\)"):
        score_multi_vector(q, p[0])
    with pytest.raises(ValueError, match="dim 6"):
        score_multi_vector(q, [torch.randn(2, 6)])
    with pytest.raises(ValueError, match=r"ps\[1\] has dim 5"):
        score_multi_vector(q, [torch.randn(2, 8), torch.randn(2, 5)])
    with pytest.raises(ValueError, match=r"qs\[0\] must be float32"):
        score_multi_vector([torch.ones(2, 8, dtype=torch.int64)], p)
    with pytest.raises(ValueError, match="batch_size"):
        score_multi_vector(q, p, 0)
    with pytest.raises(ValueError, match="CPU or CUDA"):
        score_multi_vector(q, p, device="meta")
    with pytest.raises(TypeError, match="list of"):
        score_multi_vector(q, "passages")


# ---------------------------------------------------------------------------------------------
# Patching colpali-engine


def test_patch_routes_every_processor_and_unpatches(tiny):
    q, ps = floor_case()
    processor = tiny[1]
    assert isinstance(processor, ColPaliProcessor)  # its score() -> self.score_multi_vector
    score = lambda: processor.score(q, ps, device="cpu")  # noqa: E731
    assert score().tolist() == [[0.0, 0.0]]
    handle = patch_colpali_engine()
    assert handle.installed and handle.active and is_colpali_engine_patched()
    assert score().tolist() == [[-1.0, 0.0]]                            # exact via processor.score
    assert BaseVisualRetrieverProcessor.score_multi_vector(q, ps).tolist() == [[-1.0, 0.0]]
    again = patch_colpali_engine()                                     # idempotent
    assert not again.installed
    with pytest.raises(ValueError, match="already patched"):
        patch_colpali_engine(colpali_padding=True)
    assert handle.unpatch() and not is_colpali_engine_patched()
    assert BaseVisualRetrieverProcessor.__dict__["score_multi_vector"] is ORIGINAL
    assert score().tolist() == [[0.0, 0.0]]
    assert not unpatch_colpali_engine()                                # nothing left to undo


def test_patch_as_nested_context_managers():
    with patch_colpali_engine(colpali_padding=True) as outer:
        assert outer.colpali_padding
        with patch_colpali_engine(colpali_padding=True):
            pass
        assert is_colpali_engine_patched()   # the inner block did not own the patch
    assert not is_colpali_engine_patched()
    assert BaseVisualRetrieverProcessor.__dict__["score_multi_vector"] is ORIGINAL


def test_patched_rankings_equal_colpali_engine_on_realistic_embeddings():
    rng = np.random.default_rng(0)
    common = F.normalize(torch.from_numpy(rng.standard_normal(128)).float(), dim=0)
    centres = F.normalize(torch.from_numpy(rng.standard_normal((40, 128))).float(), dim=-1)
    centres = F.normalize(centres + 0.6 * common, dim=-1)
    ps = clustered(150, (20, 80), centres, rng)
    qs = clustered(12, (8, 25), centres, rng, noise=0.5)
    before = colpali_engine_scores(qs, ps, batch_size=32)
    # The premise of "identical rankings": on such data no query token's best match is
    # negative, so the zero floor never bites and exact MaxSim equals colpali-engine's.
    exact = exact_scores(qs, ps)
    torch.testing.assert_close(before, exact, atol=2e-5, rtol=2e-6)
    for padding in (False, True):
        with patch_colpali_engine(colpali_padding=padding):
            after = BaseVisualRetrieverProcessor.score_multi_vector(qs, ps, batch_size=32)
        torch.testing.assert_close(after, before, atol=2e-5, rtol=2e-6)
        assert torch.equal(after.argsort(dim=1, descending=True, stable=True),
                           before.argsort(dim=1, descending=True, stable=True))
    # the data discriminate: each query's best pages stand clear of its typical page
    top, median = before.max(1).values, before.median(1).values
    assert bool((top > median + 1).all())


# ---------------------------------------------------------------------------------------------
# End to end on the tiny model


def test_end_to_end_on_the_tiny_model(tiny):
    Image = pytest.importorskip("PIL.Image")
    from colkern.colpali import ColPaliEncoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encoder = ColPaliEncoder(*tiny)
        rng = np.random.default_rng(5)
        images = [Image.fromarray(rng.integers(0, 256, (50 + 7 * i, 64, 3), dtype=np.uint8)) for i in range(6)]
        texts = ["total revenue", "a quick brown fox jumps over the lazy dog", "Figure 3"]

        # colpali-engine's pipeline: unbind the padded model outputs, score with the processor
        model, processor = encoder.model, encoder.processor
        with torch.inference_mode():
            doc_out = model(**processor.process_images(images))
            query_out = model(**processor.process_queries(texts))
        ps_engine, qs_engine = list(doc_out.unbind()), list(query_out.unbind())
        engine = processor.score(qs_engine, ps_engine, device="cpu")
        torch.testing.assert_close(score_multi_vector(qs_engine, ps_engine, colpali_padding=True), engine,
                                   atol=2e-6, rtol=1e-6)
        with patch_colpali_engine(colpali_padding=True):
            torch.testing.assert_close(processor.score(qs_engine, ps_engine, device="cpu"), engine,
                                       atol=2e-6, rtol=1e-6)

        # colkern's encoder (patches only, no batch padding) scored by the patched processor
        pages = [p.embeddings for p in encoder.encode_images(images)]
        queries = encoder.encode_queries(texts)
        with patch_colpali_engine():
            patched = processor.score(queries, pages)
        torch.testing.assert_close(patched, exact_scores(queries, pages), atol=2e-6, rtol=2e-6)
        assert patched.shape == (3, 6) and patched.std() > 0
    finally:
        torch.set_num_threads(threads)
