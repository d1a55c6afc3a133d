"""`python -m bench [NAME...]`: run every bench/bench_*.py (or the named ones) and print the figures."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from bench.common import CUSTOMERS, Figure


def _row(f: Figure) -> str:
    ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
    comparator = f"{f.comparator_seconds:.2f} s  {f.comparator}" if f.comparator_seconds is not None else ""
    if f.cpu_ratio is not None:
        ratio += f" (cpu {f.cpu_ratio:.2f}x)"
    load = f"load {os.getloadavg()[0]:.1f}"  # a shared machine: a figure means little without its load
    return f"{f.step:<42} {f.seconds:>8.2f} s {f.peak_mb:>8.0f} MB  {ratio:>6}  {comparator:<48} {f.target}  {load}"


def main(names: list[str]) -> None:
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if names:
        modules = [m for m in modules if m.removeprefix("bench_") in names or m in names]
    print(f"pleasepoint benchmarks: {CUSTOMERS:,} customers")
    header = f"{'step':<42} {'time':>10} {'peak':>11}  {'ratio':>6}  {'comparator (same run)':<48} target  (1-min load average)"
    print(header)
    print("-" * len(header))
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        for figure in module.run():
            print(_row(figure), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
