"""colkern.patch_pylate() against the real PyLate package (pylate.scores and the defaults of its
losses), values and gradients.

`make install` puts PyLate 1.6 in the test environment with `pip install --no-deps` (its pinned
dependencies would replace torch 2.13 through fastkmeans); only pylate.scores and pylate.losses
are imported here, which need nothing beyond what colkern's test extras install (plus `datasets`).
The module is skipped when PyLate is not installed; tests/test_losses.py covers the patch against a
faithful copy of PyLate's scoring in any case.
"""
import pytest
import torch
import torch.nn.functional as F

from colkern.colpali import import_colpali_engine
from colkern.losses import is_pylate_patched, patch_pylate

pytest.importorskip("pylate")
import_colpali_engine()  # torchvision shim: pylate.losses imports transformers' vision models
scores = pytest.importorskip("pylate.scores")
distillation = pytest.importorskip("pylate.losses.distillation")

D = 32


def _unit(*shape, seed):
    """Unit vectors sharing a common direction, as trained ColBERT embeddings do: every query
    token's best valid similarity is then positive, where PyLate's multiplicative masks and
    colkern's masks agree (tests/test_losses.py covers where they differ)."""
    x = torch.randn(*shape, D, generator=torch.Generator().manual_seed(seed)) + 0.6
    return F.normalize(x, dim=-1)


def _masks():
    q_mask = torch.ones(3, 6)
    q_mask[0, 5] = 0
    d_mask = torch.ones(4, 10)
    d_mask[1, 8:] = 0
    d_mask[3, 2:] = 0
    return q_mask, d_mask


def _grads(fn, *tensors):
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    out.square().sum().backward()  # a loss whose gradient depends on every score
    return out.detach(), [t.grad for t in leaves]


def test_colbert_scores_values_and_gradients_match_pylate():
    q, d = _unit(3, 6, seed=0), _unit(4, 10, seed=1)
    q_mask, d_mask = _masks()
    original = scores.colbert_scores
    ref, ref_grads = _grads(lambda a, b: original(a, b, q_mask, d_mask, backend="torch"), q, d)
    with patch_pylate():
        assert scores.colbert_scores is not original
        got, got_grads = _grads(lambda a, b: scores.colbert_scores(a, b, q_mask, d_mask), q, d)
        # A call that names PyLate's own backend is PyLate's: bit for bit its result.
        torch.testing.assert_close(scores.colbert_scores(q, d, q_mask, d_mask, backend="torch"), ref,
                                   rtol=0, atol=0)
    assert scores.colbert_scores is original and not is_pylate_patched()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_contrastive_group_scores_match_pylate():
    """ColBERTScores (the default score_metric of pylate.losses.Contrastive) looks colbert_scores up
    in its module on every call, so the patch reaches it."""
    q = _unit(3, 6, seed=2)
    docs = _unit(3, 2, 10, seed=3)  # [Q_doc, N, Dt, H]: a positive and a negative per query
    d_mask = torch.ones(3, 2, 10)
    d_mask[0, 1, 7:] = 0
    ref = scores.ColBERTScores()(q, docs, None, d_mask, backend="torch")
    with patch_pylate():
        got = scores.ColBERTScores()(q, docs, None, d_mask)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_kd_and_pairwise_scores_and_loss_defaults_match_pylate():
    q = _unit(3, 6, seed=4)
    kd = _unit(3, 4, 10, seed=5)
    pair_d = _unit(3, 10, seed=6)
    ref_kd = scores.colbert_kd_scores(q, kd, backend="torch")
    ref_pair = scores.colbert_scores_pairwise(q, pair_d, backend="torch")
    default_before = distillation.Distillation.__init__.__defaults__
    with patch_pylate():
        torch.testing.assert_close(scores.colbert_kd_scores(q, kd), ref_kd, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(scores.colbert_scores_pairwise(q, pair_d), ref_pair, rtol=1e-5, atol=1e-5)
        # Distillation binds score_metric=colbert_kd_scores when its class is defined.
        bound = [v for v in distillation.Distillation.__init__.__defaults__ if callable(v)]
        assert bound and all(getattr(v, "__colkern_original__", None) is not None for v in bound)
        with pytest.raises(ValueError, match="masks are colkern's extension"):
            scores.colbert_scores_pairwise(q.double(), pair_d.double(), queries_mask=torch.ones(3, 6))
    assert distillation.Distillation.__init__.__defaults__ == default_before
