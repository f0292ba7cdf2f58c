"""The benchmark cases and baselines behind `colkern bench` (benchmarks/ runs the full sizes)."""
from .cases import Case, fma_ceiling_gflops, format_table, run

__all__ = ["Case", "fma_ceiling_gflops", "format_table", "run"]
