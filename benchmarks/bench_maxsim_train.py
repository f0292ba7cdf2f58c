"""Training step of late-interaction models: forward + backward of the in-batch contrastive loss
(colpali-engine's ColbertLoss: length-normalised MaxSim scores, cross-entropy over the batch),
colkern.losses.colbert_loss against torch einsum autograd, on the same tensors in the same run.

    pytest benchmarks/bench_maxsim_train.py --benchmark-json=train.json
    COLKERN_BENCH_QUICK=1 pytest benchmarks/bench_maxsim_train.py --benchmark-disable   # CI

Shapes: ColBERT (32 queries x 32 tokens against 32 x 8 documents of 180 tokens, D = 128) and
ColPali (16 queries x 24 tokens against 16 x 2 pages of 1030 patches). extra_info holds the
speed-up over einsum and the peak resident memory of one training step of each provider, taken in
a fresh process (einsum materialises the [Nq, Nd, Lq, Ld] similarity tensor and its gradient;
colkern keeps an int32 argmax [Nq, Lq, Nd]).
"""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from _harness import QUICK, case, run

from colkern._bench.cases import Case
from colkern.losses import colbert_loss

SHAPES = {"colbert": (32, 32, 256, 180), "colpali": (16, 24, 32, 1030)}  # Nq, Lq, Nd, Ld
QUICK_SHAPES = {"colbert": (4, 8, 8, 20), "colpali": (2, 8, 4, 40)}
D = 128
PROVIDERS = ["torch einsum autograd", "colkern colbert_loss"]


def einsum_loss(Q, docs, temperature=0.02):
    """colpali-engine's ColbertLoss (torch backend) written out."""
    scores = torch.einsum("bnd,csd->bcns", Q, docs).amax(3).sum(2)
    scores = scores / (Q[:, :, 0] != 0).sum(1)[:, None]
    return F.cross_entropy(scores / temperature, torch.arange(Q.shape[0]))


LOSSES = {"torch einsum autograd": einsum_loss, "colkern colbert_loss": lambda Q, d: colbert_loss(Q, d)}


def tensors(shape, dtype=torch.float32):
    Nq, Lq, Nd, Ld = shape
    g = torch.Generator().manual_seed(0)
    Q = F.normalize(torch.randn(Nq, Lq, D, generator=g), dim=-1).to(dtype).requires_grad_()
    docs = F.normalize(torch.randn(Nd, Ld, D, generator=g), dim=-1).to(dtype).requires_grad_()
    return Q, docs


def step(loss_fn, Q, docs):
    Q.grad = docs.grad = None
    loss_fn(Q, docs).backward()


def build(name):
    shape = (QUICK_SHAPES if QUICK else SHAPES)[name]
    Q, docs = tensors(shape)
    Nq, Lq, Nd, Ld = shape
    return Case(name=f"train-{name} {Nq}x{Lq} vs {Nd}x{Ld} D={D} fp32", flops=2 * Nq * Lq * Nd * Ld * D, docs=Nd,
                providers={p: (lambda f=f: step(f, Q, docs)) for p, f in LOSSES.items()},
                baseline=PROVIDERS[0], note="forward + backward of the in-batch loss")


def peak_rss_mb(name, provider):
    """Peak RSS growth (MiB) of one training step in a fresh process (after the inputs exist)."""
    code = ("import sys, resource; sys.path.insert(0, sys.argv[3]); import bench_maxsim_train as b; "
            "Q, d = b.tensors((b.QUICK_SHAPES if b.QUICK else b.SHAPES)[sys.argv[1]]); "
            "f = b.LOSSES[sys.argv[2]]; before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "b.step(f, Q, d); print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    out = subprocess.run([sys.executable, "-c", code, name, provider, os.path.dirname(__file__)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_train_step(benchmark, name, provider):
    c = case(f"train-{name}", lambda: build(name))
    extra = {} if QUICK else {"peak_rss_growth_mib": peak_rss_mb(name, provider)}
    run(benchmark, f"train-{name}", c, provider, rounds=2 if QUICK else 5, extra=extra)


