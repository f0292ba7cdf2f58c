"""Turns a pytest-benchmark JSON into the README's markdown table.

    python benchmarks/report.py bench.json [more.json ...] > table.md
"""
import json
import sys

from colkern._bench.cases import work_column


def main(paths) -> None:
    data = json.load(open(paths[0]))
    rows = [b["extra_info"] for path in paths for b in json.load(open(path))["benchmarks"]
            if "gflops" in b["extra_info"]]
    if not rows:
        sys.exit("no timed benchmarks in the JSON (was it run with --benchmark-disable?)")
    first = rows[0]
    ceilings = [r["fma_ceiling_gflops"] for r in rows]
    print(f"CPU: {first['cpu']} ({data['machine_info'].get('cpu', {}).get('brand_raw', '')}), "
          f"{first['threads']} threads; fp32 FMA ceiling measured before each timing: "
          f"{min(ceilings):.0f}-{max(ceilings):.0f} GFLOP/s\n")
    print("| case | provider | docs/s | rate (GFLOP/s with % of FMA ceiling, token pairs/s, or GB/s) "
          "| speed-up vs baseline | vs fastest torch | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        speed = f"{r['speedup_vs_baseline']:.2f}x" if "speedup_vs_baseline" in r else (
            "baseline" if r["provider"] == r["baseline"] else "-")
        best = f"{r['speedup_vs_best_torch']:.2f}x" if "speedup_vs_best_torch" in r else "-"
        note = r.get("note", "")
        if "peak_extra_bytes" in r:
            note = f"peak extra memory {r['peak_extra_bytes'] / 2**20:.2f} MiB; {note}"
        work = work_column(r)
        one_pass = r.get("time_ratio_vs[torch x.sum(1) (one pass)]")
        if one_pass is not None and r["provider"].startswith("colkern"):
            note = f"time = {one_pass:.2f}x one torch pass (x.sum(1)); {note}"
        print(f"| {r['case']} | {r['provider']} | {r['docs_per_s']:,.0f} | {work} | {speed} | {best} | {note} |")


if __name__ == "__main__":
    main(sys.argv[1:])
