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


def _compile_package() -> None:
    """Byte-compile the package, as pip does when it installs a wheel. An editable install (`make install`)
    leaves that to the interpreter, and where PYTHONDONTWRITEBYTECODE is set (as on the bench machine) every
    command compiled its ~40 modules again: 0.05-0.07 s a run, measured against a DuckDB that pip compiled."""
    import compileall

    import pleasepoint_cli

    compileall.compile_dir(Path(pleasepoint_cli.__file__).parent, quiet=1)


def main(names: list[str]) -> None:
    _compile_package()
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
