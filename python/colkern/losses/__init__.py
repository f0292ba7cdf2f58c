"""Training losses of late-interaction models on colkern's differentiable MaxSim, and drop-in
scoring for training libraries (PyLate). A layer above colkern.ops; imports nothing else.

    loss = colkern.losses.colbert_loss(Q, docs)                 # in-batch InfoNCE (ColBERT / ColPali)
    loss = colkern.losses.colbert_pairwise_loss(Q, docs)        # hardest in-batch negative, softplus
    with colkern.losses.patch_pylate(): ...                     # PyLate's scores computed by colkern
"""
from .colbert import colbert_loss, colbert_pairwise_loss
from .pylate import PyLatePatch, is_pylate_patched, patch_pylate, unpatch_pylate

__all__ = ["PyLatePatch", "colbert_loss", "colbert_pairwise_loss", "is_pylate_patched", "patch_pylate",
           "unpatch_pylate"]
