"""Command line: `colkern info`, `colkern bench`, `colkern index` (page index, `--hybrid`, `--ray`),
`colkern search`, `colkern quality build-dataset | train | evaluate | predict`,
`colkern export qdrant | vespa`."""
from __future__ import annotations

import argparse
import json
import sys

import torch


def _info(_args) -> int:
    from .ops import backend_info

    print(json.dumps(backend_info(), indent=2))
    return 0


def _bench(args) -> int:
    from . import _bench as bench

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench.run(quick=not args.full, repeat=args.repeat)
    print(bench.format_table(rows, torch.get_num_threads(), bench.fma_ceiling_gflops()))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="colkern", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="ISA level, threads, Triton and CUDA availability").set_defaults(func=_info)
    b = sub.add_parser("bench", help="time colkern against the baselines and print the table")
    b.add_argument("--full", action="store_true", help="the full-size cases of benchmarks/ (minutes)")
    b.add_argument("--repeat", type=int, default=3, help="timed runs per provider (median reported)")
    b.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (default: torch's)")
    b.set_defaults(func=_bench)
    from .colpali.cli import add_commands as add_page_commands

    add_page_commands(sub)
    from .hybrid.cli import extend_commands as add_hybrid_options

    add_hybrid_options(sub)
    from .distributed.cli import extend_commands as add_ray_options

    add_ray_options(sub)
    from .quality.cli import add_commands as add_quality_commands

    add_quality_commands(sub)
    from .export.cli import add_commands as add_export_commands

    add_export_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        # Bad input (a missing model or file, a corrupt index, wrong settings): one clear line,
        # not a traceback. IndexFormatError and PdfError are ValueErrors.
        print(f"colkern {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
