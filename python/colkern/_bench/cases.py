"""Benchmark cases shared by benchmarks/ (pytest-benchmark) and `colkern bench` (a short run).

Each case builds its data once and lists providers (the baseline first); every provider is a
zero-argument callable so all of them run on the same tensors in the same process.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import torch

from ..ops import backend_info, fma_peak_gflops, maxsim, maxsim_bits, maxsim_hamming, pack, pack_bits, patch_pool
from .baselines import colpali_engine_scores, masked_pool_torch, mm_segment_reduce_scores, padded_einsum_scores


@dataclass
class Case:
    name: str
    flops: float  # useful multiply-adds x 2 per call (the MaxSim work, no padding); 0 if n/a
    docs: int
    bytes: float = 0.0  # input bytes one pass reads (memory-bound ops report GB/s)
    pairs: float = 0.0  # (query token, doc vector) pairs per call, where that is the rate
    providers: Dict[str, Callable[[], object]] = field(default_factory=dict)
    baseline: str = ""
    note: str = ""


def _ragged_lengths(n: int, lo: int, hi: int, seed: int) -> List[int]:
    return torch.randint(lo, hi + 1, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def colpali_pages_case(n_docs: int = 2000, Lq: int = 32, Ld: int = 1030, D: int = 128) -> Case:
    g = torch.Generator().manual_seed(0)
    docs = torch.randn(n_docs, Ld, D, generator=g)
    Q = torch.randn(Lq, D, generator=g)
    doc_list, docs_bf16, Q_bf16 = list(docs), docs.to(torch.bfloat16), Q.to(torch.bfloat16)
    case = Case(f"colpali_pages Q[{Lq},{D}] x {n_docs} docs [{Ld},{D}]", 2.0 * Lq * Ld * D * n_docs,
                n_docs, baseline="colpali-engine fp32")
    case.providers = {
        "colpali-engine fp32": lambda: colpali_engine_scores([Q], doc_list),
        "pre-padded einsum fp32": lambda: padded_einsum_scores(Q[None], docs),
        "colkern fp32": lambda: maxsim(Q, docs),
        "colkern bf16": lambda: maxsim(Q_bf16, docs_bf16),
    }
    return case


def ragged_case(n_docs: int = 20000, Lq: int = 32, D: int = 128, lo: int = 30, hi: int = 300) -> Case:
    g = torch.Generator().manual_seed(1)
    lengths = _ragged_lengths(n_docs, lo, hi, seed=2)
    doc_list = [torch.randn(L, D, generator=g) for L in lengths]
    packed = pack(doc_list)
    Q = torch.randn(1, Lq, D, generator=g)
    case = Case(f"ragged Q[{Lq},{D}] x {n_docs} docs of {lo}-{hi} tokens", 2.0 * Lq * D * sum(lengths),
                n_docs, baseline="pad+einsum fp32")
    case.providers = {
        "pad+einsum fp32": lambda: colpali_engine_scores([Q[0]], doc_list),
        "torch.mm+segment_reduce fp32": lambda: mm_segment_reduce_scores(Q, packed.values, packed.offsets),
        "colkern fp32": lambda: maxsim(Q, packed),
    }
    return case


def multi_query_case(n_queries: int = 64, n_docs: int = 2000, Lq: int = 32, Ld: int = 1030, D: int = 128) -> Case:
    g = torch.Generator().manual_seed(3)
    docs = torch.randn(n_docs, Ld, D, generator=g)
    Q = torch.randn(n_queries, Lq, D, generator=g)
    case = Case(f"multi_query {n_queries} x Q[{Lq},{D}] x {n_docs} docs [{Ld},{D}]",
                2.0 * n_queries * Lq * Ld * D * n_docs, n_docs, baseline="",
                note="no baseline: reported against the measured FMA ceiling")
    case.providers = {"colkern fp32": lambda: maxsim(Q, docs)}
    return case


def topk_case(n_docs: int = 200_000, n_queries: int = 16, k: int = 10, Lq: int = 32, D: int = 128,
              pool_rows: int = 1_000_000) -> Case:
    """200k ragged documents as row ranges into a shared pool (the op accepts any ranges), so the
    corpus costs pool_rows x D floats instead of ~33M rows."""
    g = torch.Generator().manual_seed(4)
    values = torch.randn(pool_rows, D, generator=g)
    lengths = torch.tensor(_ragged_lengths(n_docs, 30, 300, seed=5), dtype=torch.int64)
    starts = (torch.rand(n_docs, generator=g) * (pool_rows - lengths)).to(torch.int64)
    Q = torch.randn(n_queries, Lq, D, generator=g)
    case = Case(f"topk k={k}, {n_queries} x Q[{Lq},{D}] x {n_docs} ragged docs",
                2.0 * n_queries * Lq * D * float(lengths.sum()), n_docs, baseline="")
    case.providers = {"colkern fp32 topk": lambda: torch.ops.colkern.maxsim_topk(Q, None, values, starts, lengths, k)}
    case.note = f"a full score matrix would be {n_queries * n_docs * 4 / 2**20:.1f} MiB"
    return case


def bits_case(n_docs: int = 2000, Lq: int = 32, Ld: int = 1030, D: int = 128) -> Case:
    """Binary index scoring against colkern's own fp32 MaxSim on the same pages: the rate that
    matters is (query token, doc vector) pairs per second; bits read 32x fewer document bytes."""
    g = torch.Generator().manual_seed(7)
    docs = torch.randn(n_docs, Ld, D, generator=g)
    Q = torch.randn(Lq, D, generator=g)
    packed = pack(list(docs))
    bits = pack_bits(packed)
    Q_bits = pack_bits(Q)
    case = Case(f"binary Q[{Lq},{D}] x {n_docs} docs [{Ld},{D}]", 2.0 * Lq * Ld * D * n_docs, n_docs,
                baseline="colkern fp32", note=f"{Lq * Ld * n_docs / 1e6:.0f}M token pairs per call")
    case.pairs = Lq * Ld * n_docs
    case.providers = {
        "colkern fp32": lambda: maxsim(Q, packed),
        "colkern bits pm1 (float x bits)": lambda: maxsim_bits(Q, bits, dim=D),
        "colkern hamming (bits x bits)": lambda: maxsim_hamming(Q_bits, bits, dim=D),
    }
    return case


def patch_pool_case(pages: int = 64, patches: int = 1024, D: int = 2048,
                    dtype: torch.dtype = torch.float32) -> Case:
    """Pooling is memory bound: the reference points are the three-op torch baseline and one
    torch reduction pass over the same tensor (x.sum(1)), the memory-speed yardstick."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(pages, patches, D, generator=g).to(dtype)
    mask = torch.ones(pages, patches, dtype=torch.bool)
    mask[:, patches - patches // 8:] = torch.rand(pages, patches // 8, generator=g) > 0.5
    name = str(dtype).replace("torch.", "")
    case = Case(f"patch_pool {pages} pages x {patches} patches x {D} {name}", 0.0, pages,
                bytes=x.numel() * x.element_size(), baseline="torch mean+amax+std (masked)")
    case.providers = {
        "torch mean+amax+std (masked)": lambda: masked_pool_torch(x, mask),
        "torch x.sum(1) (one pass)": lambda: x.sum(1),
        "colkern patch_pool (masked)": lambda: patch_pool(x, mask=mask),
    }
    return case


def cases(quick: bool) -> List[Case]:
    if quick:
        return [colpali_pages_case(n_docs=200), ragged_case(n_docs=2000),
                multi_query_case(n_queries=8, n_docs=100), bits_case(n_docs=200),
                patch_pool_case(pages=16, D=2048),
                patch_pool_case(pages=16, D=2048, dtype=torch.bfloat16)]
    return [colpali_pages_case(), ragged_case(), multi_query_case(), bits_case(), patch_pool_case(D=2048),
            patch_pool_case(D=128), patch_pool_case(D=2048, dtype=torch.bfloat16),
            patch_pool_case(D=128, dtype=torch.bfloat16)]


def fma_ceiling_gflops() -> float:
    return fma_peak_gflops()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_call(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: first-touch page faults, thread pool start
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(quick: bool = True, repeat: int = 3) -> List[dict]:
    """Times every provider of every case; returns one row per (case, provider)."""
    ceiling = fma_ceiling_gflops()
    rows = []
    for case in cases(quick):
        base_time = None
        for provider, fn in case.providers.items():
            seconds = time_call(fn, repeat)
            if provider == case.baseline:
                base_time = seconds
            rows.append({
                "case": case.name, "provider": provider, "seconds": seconds,
                "docs_per_s": case.docs / seconds, "gflops": case.flops / seconds / 1e9,
                "pct_fma_ceiling": 100 * case.flops / seconds / 1e9 / ceiling,
                "gb_per_s": case.bytes / seconds / 1e9,
                "pairs_per_s": case.pairs / seconds,
                "speedup": (base_time / seconds) if base_time else None,
            })
    return rows


def work_column(r: dict) -> str:
    """The rate that fits the case: token pairs/s (binary scoring, where float FLOPs would
    mislead), GFLOP/s with % of the FMA ceiling, or GB/s (memory-bound pooling)."""
    if r.get("pairs_per_s"):
        return f"{r['pairs_per_s'] / 1e6:,.0f} M token pairs/s"
    if r.get("gflops"):
        return f"{r['gflops']:.1f} GFLOP/s ({r['pct_fma_ceiling']:.0f}%)"
    return f"{r['gb_per_s']:.1f} GB/s"


def format_table(rows: List[dict], threads: int, ceiling: float) -> str:
    lines = [f"CPU: {cpu_name()}, {threads} threads, ISA {backend_info()['cpu_isa_active']}, "
             f"measured fp32 FMA ceiling {ceiling:.0f} GFLOP/s", "",
             "| case | provider | docs/s | rate | speed-up vs baseline |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        work = work_column(r)
        lines.append(f"| {r['case']} | {r['provider']} | {r['docs_per_s']:,.0f} | {work} | {speed} |")
    return "\n".join(lines)
