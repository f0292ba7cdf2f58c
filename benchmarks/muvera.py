"""MUVERA (Dhulipala et al. 2024) fixed-dimensional encodings as the alternative candidate stage,
measured by search_at_scale.py --muvera. Benchmark code only: not a colkern mode.

Per repetition r: k_sim random hyperplanes split the space into 2^k_sim partitions (SimHash);
tokens are projected to d_proj dims by a random +-1 matrix. A query's encoding holds, per
partition, the SUM of its projected tokens; a document's the MEAN of its projected tokens in
that partition, an empty partition filled with the token nearest to it in SimHash (hamming)
distance. <FDE(q), FDE(d)> approximates MaxSim(q, d); the R repetitions are concatenated
(R * 2^k_sim * d_proj dims). Candidates: the top M documents by inner product, found by an
exact matmul scan or an HNSW graph (usearch, if installed), then exact MaxSim reranking with
colkern on the index's fp16 floats.
"""
from __future__ import annotations

import statistics
import time

import torch

from colkern.retrieval.sharded_search import ShardedSearcher

K_SIM, D_PROJ, REPS = 5, 16, 8  # 4096-dimensional encodings


class FDE:
    def __init__(self, dim: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.planes = torch.randn(REPS, dim, K_SIM, generator=g)
        self.proj = (torch.randint(0, 2, (REPS, dim, D_PROJ), generator=g).float() * 2 - 1) / D_PROJ ** 0.5
        self.weights = 2 ** torch.arange(K_SIM - 1, -1, -1)
        P = 2 ** K_SIM
        pb = (torch.arange(P)[:, None] & self.weights) != 0  # [P, K_SIM] the bits of each partition id
        self.part_bits = pb

    @property
    def size(self) -> int:
        return REPS * 2 ** K_SIM * D_PROJ

    def docs(self, x: torch.Tensor, n: int, L: int) -> torch.Tensor:
        """n documents of L tokens each, x float [n * L, D] -> [n, size]."""
        P = 2 ** K_SIM
        out = []
        for r in range(REPS):
            bits = (x @ self.planes[r]) > 0                                   # [T, k]
            part = (bits.long() * self.weights).sum(1)                        # [T]
            y = x @ self.proj[r]                                              # [T, d]
            key = torch.arange(n).repeat_interleave(L) * P + part
            sums = torch.zeros(n * P, D_PROJ).index_add_(0, key, y)
            cnt = torch.bincount(key, minlength=n * P).float()
            enc = sums / cnt.clamp(min=1)[:, None]
            empty = (cnt == 0).nonzero().reshape(-1)
            if empty.numel():  # nearest token of the document to the partition, by hamming distance
                d, p = empty // P, empty % P
                tok_bits = bits.view(n, L, K_SIM)[d]                          # [E, L, k]
                ham = (tok_bits != self.part_bits[p][:, None, :]).sum(2)      # [E, L]
                nearest = ham.argmin(1)
                enc[empty] = y.view(n, L, D_PROJ)[d, nearest]
            out.append(enc.view(n, P * D_PROJ))
        return torch.cat(out, 1)

    def query(self, q: torch.Tensor) -> torch.Tensor:
        P = 2 ** K_SIM
        out = []
        for r in range(REPS):
            part = (((q @ self.planes[r]) > 0).long() * self.weights).sum(1)
            out.append(torch.zeros(P, D_PROJ).index_add_(0, part, q @ self.proj[r]).reshape(-1))
        return torch.cat(out)


def muvera_report(index, Q, mask, exact_i, k: int) -> dict:
    fde = FDE(index.dim)
    t = time.perf_counter()
    enc = []
    for sh in index.shards:
        L = int(sh.lengths[0])
        assert bool((sh.lengths == L).all()), "the benchmark corpus has pages of one length"
        for lo in range(0, sh.num_docs, 1000):
            n = min(1000, sh.num_docs - lo)
            enc.append(fde.docs(sh.floats[lo * L:(lo + n) * L].float(), n, L))
    D = torch.cat(enc)
    t_build = time.perf_counter() - t
    out = {"fde_dims": fde.size, "k_sim": K_SIM, "d_proj": D_PROJ, "reps": REPS, "encode_s": t_build,
           "fde_bytes_per_doc": fde.size * 4}
    hnsw = None
    try:
        from usearch.index import Index as UIndex

        t = time.perf_counter()
        hnsw = UIndex(ndim=fde.size, metric="ip", dtype="f32", connectivity=16, expansion_add=128, expansion_search=256)
        hnsw.add(torch.arange(D.shape[0]).numpy(), D.numpy(), threads=torch.get_num_threads())
        out["hnsw_build_s"] = time.perf_counter() - t
    except ImportError:
        out["hnsw"] = "usearch not installed"
    searcher = ShardedSearcher(index, torch.ones(index.num_positions, dtype=torch.bool), False)
    qs = [Q[b][mask[b]].contiguous() for b in range(Q.shape[0])]
    ex = exact_i.tolist()
    for M in (100, 1000):
        for how in ("exact", "hnsw") if hnsw is not None else ("exact",):
            lat, found = [], []
            for q in qs:
                t = time.perf_counter()
                fq = fde.query(q)
                if how == "exact":
                    cand = torch.topk(D @ fq, min(M, D.shape[0])).indices
                else:
                    cand = torch.from_numpy(hnsw.search(fq.numpy(), M).keys.astype("int64"))
                _, p = searcher.topk("float", q, torch.sort(cand).values, k)
                lat.append(time.perf_counter() - t)
                found.append(p.tolist())
            rec = statistics.mean(len(set(f) & set(e)) / k for f, e in zip(found, ex))
            out[f"{how}_M{M}"] = {"median_ms": 1e3 * statistics.median(lat), "recall@10": rec}
    return out
