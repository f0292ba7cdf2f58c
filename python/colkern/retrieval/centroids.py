"""Token-vector codebook of the sharded index: spherical k-means, centroid codes, inverted lists,
and the candidate stage (PLAID / WARP style) that keeps search cost sub-linear in the corpus.

Codebook. K unit centroids trained by spherical k-means (cosine assignment, mean direction
update, all matmuls) on a SAMPLE of the corpus. Above `FLAT_MAX` centroids the codebook is
two-level: ~sqrt(K) coarse centroids, and each coarse cluster's share of the sample split into
fine centroids stored contiguously (fine rows `coarse_offsets[c]:coarse_offsets[c+1]`). Assigning
a vector then costs ~2 sqrt(K) dot products instead of K (100M vectors x K = 65536 would be
1.7 PFLOP flat, ~13 TFLOP two-level: minutes on 2 cores). The vector gets the best fine
centroid of its best coarse centroid, which is not always the global best: the candidate stage
is approximate anyway and rescoring is exact. Queries probe with the exact Q @ C^T over all K.

The codebook also carries the corpus mean and the scale of the centred sign bits (see
colkern.retrieval.shard for why the bits are of x - mean).

Candidate stage. For query token i let s_i(c) = q_i . c. Each token probes its `nprobe` best
centroids; a document's approximate score is

    approx(d) = sum_i  max over probed c holding a token of d of s_i(c),   or m_i if none

with m_i = the score of token i's best unprobed centroid (rank nprobe): every token of d that
sits in no probed centroid has centroid score <= m_i, so m_i is an upper bound for the missing
similarity (WARP's imputation; without it a document seen by few tokens would rank below one
seen by many weak ones). sum_i m_i is the same for every document, so ranking uses
delta(d) = sum_i max(0, best probed s_i(c) - m_i), which only involves the documents in the
probed inverted lists: the work is Lq * nprobe * (documents per list), not the corpus size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..ops import centroid_scores

FLAT_MAX = 1024  # codebooks up to this size are flat (one level)
_ITERS = 10
_BLOCK_ELEMS = 1 << 24  # rows x centroids per assignment matmul block (64 MiB of fp32 scores)


@dataclass
class Codebook:
    """centroids float32 [K, D] unit rows; mean float32 [D] (zeros: no centring); scale: the
    least-squares scale of the centred sign bits, mean |x_d - mean_d| (so scale * (2b - 1)
    approximates x - mean); coarse float32 [K1, D] and coarse_offsets int64 [K1 + 1] for a
    two-level codebook (fine centroids of coarse c are rows coarse_offsets[c]:[c + 1]), else None."""

    centroids: Tensor
    mean: Tensor
    scale: float
    coarse: Optional[Tensor] = None
    coarse_offsets: Optional[Tensor] = None

    @property
    def num_centroids(self) -> int:
        return self.centroids.shape[0]

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]


def auto_num_centroids(num_vectors: int) -> int:
    """Default K for a corpus of `num_vectors`: the power of two nearest 4 sqrt(T) (PLAID takes
    16 sqrt(T); fewer, longer lists suit our centroid-only scores, which need no residual
    decoding), at least 1 and at most num_vectors."""
    if num_vectors < 1:
        raise ValueError(f"auto_num_centroids: num_vectors must be >= 1, got {num_vectors}")
    k = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(num_vectors))))
    return int(max(1, min(k, num_vectors)))


def train_codebook(sample: Tensor, num_centroids: int, *, center: bool = True, seed: int = 0,
                   iters: int = _ITERS) -> Codebook:
    """Spherical k-means on `sample` float [S, D] (S >= num_centroids) -> Codebook.
    center: store the sample mean for centred binarisation (else zeros)."""
    x = sample.float()
    S, D = x.shape
    if not 1 <= num_centroids <= S:
        raise ValueError(f"train_codebook: num_centroids must be in [1, {S}] (the sample size), got {num_centroids}")
    g = torch.Generator().manual_seed(seed)
    mean = x.mean(0) if center else torch.zeros(D)
    scale = float((x - mean).abs().mean()) or 1.0
    unit = torch.nn.functional.normalize(x, dim=1)
    if num_centroids <= FLAT_MAX:
        return Codebook(_kmeans(unit, num_centroids, iters, g), mean, scale)
    k1 = int(round(math.sqrt(num_centroids)))
    coarse = _kmeans(unit, k1, iters, g)
    parent = _argmax_dot(unit, coarse)
    sizes = torch.bincount(parent, minlength=k1)
    shares = _split(sizes, num_centroids)
    fine, offsets = [], [0]
    for c in range(k1):
        members = unit[parent == c]
        if shares[c]:
            fine.append(_kmeans(members, shares[c], iters, g))
        offsets.append(offsets[-1] + shares[c])
    keep = torch.tensor([s > 0 for s in shares])  # a coarse cluster the sample left empty owns no fine rows
    return Codebook(torch.cat(fine), mean, scale, coarse[keep].contiguous(),
                    _compact_offsets(torch.tensor(offsets, dtype=torch.int64), keep))


def assign(codebook: Codebook, x: Tensor) -> Tensor:
    """Centroid code of each row of x float [n, D] -> int32 [n] (two-level: best fine of best coarse)."""
    x = x.float()
    if codebook.coarse is None:
        return _argmax_dot(x, codebook.centroids).to(torch.int32)
    parent = _argmax_dot(x, codebook.coarse)
    codes = torch.empty(x.shape[0], dtype=torch.int32)
    order = torch.argsort(parent)
    counts = torch.bincount(parent, minlength=codebook.coarse.shape[0]).tolist()
    offs = codebook.coarse_offsets.tolist()
    lo = 0
    for c, n in enumerate(counts):
        if n:
            rows = order[lo:lo + n]
            fine = codebook.centroids[offs[c]:offs[c + 1]]
            codes[rows] = (_argmax_dot(x[rows], fine) + offs[c]).to(torch.int32)
        lo += n
    return codes


def inverted_lists(codes: Tensor, offsets: Tensor, num_centroids: int) -> Tuple[Tensor, Tensor]:
    """centroid -> documents having a token with that code, each list sorted and duplicate-free.
    codes int32 [T], offsets int64 [N+1] -> (list_offsets int64 [K+1], list_docs int32 [P])."""
    n = offsets.numel() - 1
    doc = torch.repeat_interleave(torch.arange(n, dtype=torch.int64), offsets[1:] - offsets[:-1])
    key = torch.sort(codes.to(torch.int64) * max(n, 1) + doc).values
    if key.numel():
        key = key[torch.cat([torch.ones(1, dtype=torch.bool), key[1:] != key[:-1]])]
    counts = torch.bincount(key // max(n, 1), minlength=num_centroids)
    list_offsets = torch.zeros(num_centroids + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=list_offsets[1:])
    return list_offsets, (key % max(n, 1)).to(torch.int32)


def probe(centroids: Tensor, q: Tensor, nprobe: int) -> Tuple[Tensor, Tensor]:
    """Each query token's best nprobe centroids. q float32 [Lq, D] (valid tokens only).
    -> (cent int64 [Lq, p], delta float32 [Lq, p]) with p = min(nprobe, K), delta = score minus
    the imputed missing similarity (the best unprobed centroid's score; 0 when all are probed)."""
    K = centroids.shape[0]
    p = min(nprobe, K)
    s = q @ centroids.T
    top, cent = torch.topk(s, min(p + 1, K), dim=1)
    if p < K:
        return cent[:, :p], top[:, :p] - top[:, p:p + 1]
    # Every centroid probed: nothing is missing. Scores shifted by each token's minimum stay >= 0
    # (the reducer's zero means "not seen") and the shift is the same for every document.
    return cent, top - top[:, -1:]


def approx_scores(lists: Sequence[Tuple[Tensor, Tensor, int]], cent: Tensor, delta: Tensor, n_total: int,
                  allowed: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """delta(d) for every document in the probed lists (see the module docs).

    lists: per shard (list_offsets [K+1], list_docs int32, base position of its first document),
    in position order, each shard's documents running up to the next base (the last to n_total);
    cent / delta from probe(); allowed: bool [n_total] or None (documents outside it, deleted
    or filtered out, are dropped before any scoring). -> (positions int64 [U] ascending,
    delta float32 [U]). The reduction is C++ (colkern.ops.centroid_scores): a document's sum
    runs over the query tokens in order, so it does not depend on the other documents."""
    ends = [int(base) for _, _, base in lists[1:]] + [int(n_total)]
    docs, scores = [], []
    for (list_offsets, list_docs, base), end in zip(lists, ends):
        base = int(base)
        ok = allowed[base:end] if allowed is not None else None
        d, s = centroid_scores(list_offsets, list_docs, end - base, cent, delta, ok)
        if d.numel():
            docs.append(d.add_(base) if base else d)
            scores.append(s)
    if not docs:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.float32)
    if len(docs) == 1:
        return docs[0], scores[0]
    return torch.cat(docs), torch.cat(scores)


def concat_ranges(starts: Tensor, lens: Tensor) -> Tensor:
    """The indices of ranges [starts[r], starts[r] + lens[r]) concatenated, int64, without a
    Python loop: entry e of range r is starts[r] + (e - first[r])."""
    total = int(lens.sum())
    first = torch.cumsum(lens, 0) - lens
    return torch.arange(total, dtype=torch.int64) + torch.repeat_interleave(starts - first, lens, output_size=total)


# ---------------------------------------------------------------------------------------------
# k-means helpers


def _argmax_dot(x: Tensor, c: Tensor) -> Tensor:
    """argmax_j x_i . c_j for every row, in blocks so the score matrix stays ~64 MiB."""
    out = torch.empty(x.shape[0], dtype=torch.int64)
    step = max(1, _BLOCK_ELEMS // max(1, c.shape[0]))
    ct = c.T.contiguous()
    for lo in range(0, x.shape[0], step):
        out[lo:lo + step] = torch.argmax(x[lo:lo + step] @ ct, dim=1)
    return out


def _kmeans(unit: Tensor, k: int, iters: int, g: torch.Generator) -> Tensor:
    """Spherical k-means of unit rows -> k unit centroids [k, D]. Empty clusters are re-seeded
    with random sample rows (keeps every code useful)."""
    n, D = unit.shape
    cent = unit[torch.randperm(n, generator=g)[:k]].clone()
    for _ in range(iters):
        a = _argmax_dot(unit, cent)
        sums = torch.zeros(k, D).index_add_(0, a, unit)
        counts = torch.bincount(a, minlength=k)
        empty = counts == 0
        if bool(empty.any()):
            sums[empty] = unit[torch.randint(0, n, (int(empty.sum()),), generator=g)]
        cent = torch.nn.functional.normalize(sums, dim=1)
    return cent.contiguous()


def _split(sizes: Tensor, total: int) -> List[int]:
    """`total` fine centroids shared among coarse clusters in proportion to their sizes (largest
    remainders), none above a cluster's size: k-means cannot make more centroids than points."""
    n = int(sizes.sum())
    raw = sizes.double() * total / max(n, 1)
    share = torch.minimum(raw.floor().long(), sizes)
    left = total - int(share.sum())
    # Largest remainders first, one extra centroid per cluster per round, never above its size.
    order = torch.argsort(-(raw - raw.floor())).tolist()
    while left > 0:
        before = left
        for c in order:
            if left and share[c] < sizes[c]:
                share[c] += 1
                left -= 1
        if left == before:  # every cluster full: total exceeds the sample
            break
    return share.tolist()


def _compact_offsets(offsets: Tensor, keep: Tensor) -> Tensor:
    """Offsets of the kept coarse clusters (dropped ones own no rows, so their ranges are empty)."""
    starts = offsets[:-1][keep]
    return torch.cat([starts, offsets[-1:]]).contiguous()
