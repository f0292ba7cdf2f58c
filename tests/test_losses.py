"""colkern.losses against colpali-engine's own losses (values and gradients on the same
embeddings), the PyLate drop-in against a faithful copy of PyLate's scores, and bad input.

PyLate itself is not installed here: `pip install pylate` would replace torch 2.13 (it pulls
torch 2.11 through fastkmeans). The fake `pylate` package below reproduces pylate.scores'
colbert_scores / colbert_scores_pairwise / colbert_kd_scores (einsum, multiplicative masks) and a
loss class that binds `score_metric=colbert_scores` as a default argument, as PyLate's losses do.
"""
import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F

import colkern
from colkern.colpali import import_colpali_engine, patch_colpali_engine
from colkern.losses import colbert_loss, colbert_pairwise_loss, is_pylate_patched, patch_pylate

B, LQ, LD, D = 4, 7, 11, 16


def embeddings(seed=0, n_neg=2):
    """Zero-padded, L2-normalised embeddings as colpali-engine's models return them."""
    g = torch.Generator().manual_seed(seed)
    Q = F.normalize(torch.randn(B, LQ, D, generator=g), dim=-1)
    Q[:, 5:] = 0
    Q[0, 3:] = 0
    docs = F.normalize(torch.randn(B, LD, D, generator=g), dim=-1)
    docs[1, 8:] = 0
    neg = F.normalize(torch.randn(B, n_neg, LD, D, generator=g), dim=-1)
    neg[:, 1, 9:] = 0
    return Q, docs, neg


def run(fn, tensors):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    loss = fn(*leaves)
    loss.backward()
    return loss.detach(), [t.grad for t in leaves]


@pytest.fixture(scope="module")
def engine_losses():
    os.environ["COLPALI_SCORES_BACKEND"] = "torch"
    import_colpali_engine()
    from colpali_engine.loss import late_interaction_losses as L

    return L


def assert_same(ref, ours, Q):
    (lr, gr), (lo, go) = ref, ours
    torch.testing.assert_close(lo, lr, rtol=1e-5, atol=1e-6)
    # dQ of the padding tokens (all-zero rows) differs by construction: every document row ties
    # at similarity 0 there, and torch.amax splits the gradient over the ties while colkern gives
    # it to the lowest row (the model multiplies those rows by its zero attention mask anyway).
    valid = Q[:, :, 0] != 0
    torch.testing.assert_close(go[0][valid], gr[0][valid], rtol=1e-4, atol=1e-6)
    for a, b in zip(go[1:], gr[1:]):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("filtering", [False, True])
def test_colbert_loss_equals_colpali_engine(engine_losses, filtering):
    Q, docs, neg = embeddings()
    ref = run(lambda q, d: engine_losses.ColbertLoss(pos_aware_negative_filtering=filtering)(q, d), (Q, docs))
    ours = run(lambda q, d: colbert_loss(q, d, pos_aware_negative_filtering=filtering), (Q, docs))
    assert_same(ref, ours, Q)


def test_colbert_loss_with_hard_negatives_and_temperature(engine_losses):
    Q, docs, neg = embeddings(1)
    ref = run(lambda q, d, n: engine_losses.ColbertNegativeCELoss(temperature=0.05, in_batch_term_weight=0.3)(q, d, n),
              (Q, docs, neg))
    ours = run(lambda q, d, n: colbert_loss(q, d, neg_docs=n, temperature=0.05, in_batch_term_weight=0.3),
               (Q, docs, neg))
    assert_same(ref, ours, Q)


def test_pairwise_losses_equal_colpali_engine(engine_losses):
    Q, docs, neg = embeddings(2)
    assert_same(run(lambda q, d: engine_losses.ColbertPairwiseCELoss()(q, d), (Q, docs)),
                run(lambda q, d: colbert_pairwise_loss(q, d), (Q, docs)), Q)
    assert_same(run(lambda q, d, n: engine_losses.ColbertPairwiseNegativeCELoss()(q, d, n), (Q, docs, neg)),
                run(lambda q, d, n: colbert_pairwise_loss(q, d, neg_docs=n), (Q, docs, neg)), Q)


def test_offset_and_unnormalised(engine_losses):
    Q, docs, _ = embeddings(3)
    more = torch.cat([F.normalize(torch.randn(2, LD, D), dim=-1), docs])
    ref = run(lambda q, d: engine_losses.ColbertLoss(normalize_scores=False, temperature=0.5)(q, d, offset=2),
              (Q, more))
    ours = run(lambda q, d: colbert_loss(q, d, normalize_scores=False, temperature=0.5, offset=2), (Q, more))
    assert_same(ref, ours, Q)


def test_patched_colpali_engine_losses_use_colkern(engine_losses):
    Q, docs, neg = embeddings(4)
    ref = run(lambda q, d, n: engine_losses.ColbertPairwiseNegativeCELoss()(q, d, n), (Q, docs, neg))
    with patch_colpali_engine():
        with patch_colpali_engine():  # idempotent, nested
            assert engine_losses.maxsim_inbatch.__name__ == "maxsim_inbatch_colkern"
        assert engine_losses.maxsim_inbatch.__name__ == "maxsim_inbatch_colkern"
        patched = run(lambda q, d, n: engine_losses.ColbertPairwiseNegativeCELoss()(q, d, n), (Q, docs, neg))
    assert engine_losses.maxsim_inbatch.__name__ == "maxsim_inbatch"
    assert_same(ref, patched, Q)


def test_masks_instead_of_zero_padding():
    """With explicit masks, masked rows never score (no floor at 0) and the token count is the
    mask's."""
    Q, docs, _ = embeddings(5)
    q_mask = Q[:, :, 0] != 0
    doc_lengths = (docs[:, :, 0] != 0).sum(1)
    loss = colbert_loss(Q, docs, q_mask=q_mask, doc_lengths=doc_lengths, normalize_scores=False)
    docs_list = [docs[n, :doc_lengths[n]] for n in range(B)]
    scores = colkern.maxsim_ref(Q, docs_list, q_mask=q_mask)
    torch.testing.assert_close(loss, F.cross_entropy(scores / 0.02, torch.arange(B)), rtol=1e-5, atol=1e-5)


def test_bad_input():
    Q, docs, neg = embeddings(6)
    Q[2] = 0  # a query with no token left
    with pytest.raises(ValueError, match="query 2 has no valid token"):
        colbert_loss(Q, docs)
    mask = torch.ones(B, LQ, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match="query 1 has no valid token"):
        colbert_pairwise_loss(torch.randn(B, LQ, D), docs, q_mask=mask)
    with pytest.raises(ValueError, match="needs offset \\+ B <= N"):
        colbert_loss(torch.randn(B, LQ, D), docs, offset=1)
    with pytest.raises(ValueError, match="neg_docs must be"):
        colbert_loss(torch.randn(B, LQ, D), docs, neg_docs=neg[:2])


# ---- PyLate ------------------------------------------------------------------------------


def _faithful_pylate():
    """pylate.scores as PyLate implements it (einsum in the input dtype, masks multiplied in)."""

    def colbert_scores(queries_embeddings, documents_embeddings, queries_mask=None, documents_mask=None):
        scores = torch.einsum("ash,bth->abst", queries_embeddings, documents_embeddings)
        if queries_mask is not None:
            scores = scores * queries_mask.unsqueeze(1).unsqueeze(3)
        if documents_mask is not None:
            scores = scores * documents_mask.unsqueeze(0).unsqueeze(2)
        return scores.max(axis=-1).values.sum(axis=-1)

    def colbert_scores_pairwise(queries_embeddings, documents_embeddings):
        scores = []
        for q, d in zip(queries_embeddings, documents_embeddings):
            scores.append(torch.einsum("sh,th->st", q, d).max(axis=-1).values.sum())
        return torch.stack(scores, dim=0)

    def colbert_kd_scores(queries_embeddings, documents_embeddings, queries_mask=None, documents_mask=None):
        scores = torch.einsum("ash,abth->abst", queries_embeddings, documents_embeddings)
        if queries_mask is not None:
            scores = scores * queries_mask.unsqueeze(1).unsqueeze(3)
        if documents_mask is not None:
            scores = scores * documents_mask.unsqueeze(2)
        return scores.max(axis=-1).values.sum(axis=-1)

    scores_mod = types.ModuleType("pylate.scores")
    for fn in (colbert_scores, colbert_scores_pairwise, colbert_kd_scores):
        fn.__module__ = "pylate.scores"
        setattr(scores_mod, fn.__name__, fn)
    losses_mod = types.ModuleType("pylate.losses")

    class Contrastive:
        def __init__(self, score_metric=colbert_scores, temperature=1.0):
            self.score_metric = score_metric

        def __call__(self, q, d, q_mask, d_mask):
            s = self.score_metric(q, d, q_mask, d_mask)
            return F.cross_entropy(s, torch.arange(s.shape[0]))

    Contrastive.__module__ = "pylate.losses"
    losses_mod.Contrastive = Contrastive
    losses_mod.colbert_scores = colbert_scores  # imported by name, as PyLate's modules do
    pkg = types.ModuleType("pylate")
    pkg.scores, pkg.losses = scores_mod, losses_mod
    return {"pylate": pkg, "pylate.scores": scores_mod, "pylate.losses": losses_mod}


@pytest.fixture
def pylate(monkeypatch):
    for name, mod in _faithful_pylate().items():
        monkeypatch.setitem(sys.modules, name, mod)
    yield sys.modules["pylate"]
    assert not is_pylate_patched()


def test_patch_pylate_scores_and_losses(pylate):
    g = torch.Generator().manual_seed(7)
    q = F.normalize(torch.randn(3, 5, D, generator=g), dim=-1)
    d = F.normalize(torch.randn(4, 9, D, generator=g), dim=-1)
    # Masks that remove only tokens whose best valid match is >= 0 in either convention.
    q_mask = torch.ones(3, 5)
    q_mask[0, 4] = 0
    d_mask = torch.ones(4, 9)
    d_mask[1, 7:] = 0
    kd = F.normalize(torch.randn(3, 2, 9, D, generator=g), dim=-1)
    original = pylate.scores.colbert_scores
    ref = original(q, d, q_mask, d_mask)
    ref_kd = pylate.scores.colbert_kd_scores(q, kd)
    ref_pair = pylate.scores.colbert_scores_pairwise(q, d[:3])
    loss_ref = run(lambda a, b: pylate.losses.Contrastive()(a, b, q_mask, d_mask[:3]), (q, d[:3]))
    with patch_pylate() as handle:
        assert handle.installed and patch_pylate().installed is False  # idempotent
        assert pylate.scores.colbert_scores is not original
        assert pylate.losses.colbert_scores is pylate.scores.colbert_scores
        got = pylate.scores.colbert_scores(q, d, q_mask, d_mask)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(pylate.scores.colbert_kd_scores(q, kd), ref_kd, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(pylate.scores.colbert_scores_pairwise(q, d[:3]), ref_pair, rtol=1e-5, atol=1e-5)
        loss = run(lambda a, b: pylate.losses.Contrastive()(a, b, q_mask, d_mask[:3]), (q, d[:3]))
        # float64 is not colkern's: PyLate's own function runs.
        torch.testing.assert_close(pylate.scores.colbert_scores(q.double(), d.double()),
                                   original(q.double(), d.double()))
    assert pylate.scores.colbert_scores is original
    assert pylate.losses.Contrastive.__init__.__defaults__[0] is original
    torch.testing.assert_close(loss[0], loss_ref[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(loss[1], loss_ref[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_patch_pylate_honours_masks(pylate):
    """A masked document token never scores in colkern; PyLate's multiplicative mask lets it
    score 0, which differs only where every valid similarity is negative."""
    q = torch.ones(1, 1, 2)
    d = torch.tensor([[[-1.0, -1.0], [5.0, 5.0]]])
    d_mask = torch.tensor([[1.0, 0.0]])
    assert float(pylate.scores.colbert_scores(q, d, None, d_mask)) == 0.0
    with patch_pylate():
        assert float(pylate.scores.colbert_scores(q, d, None, d_mask)) == -2.0
