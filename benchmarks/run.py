"""Every family benchmark in one run: prints the tables and writes benchmarks/results/<name>.md.

Each family runs ``--runs`` times (default 2) and every cell of the written
table is the range over the runs (one number where they agree).
Run: python benchmarks/run.py [--quick] [--name cpu] [--runs 2] [--device cpu|cuda] [--only pixelwise,region,...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _harness import machine_description, merge, steady_allocator  # noqa: E402

FAMILIES = ["pixelwise", "region", "lovasz", "volume", "distance", "metrics", "detection", "assignment", "rotated"]


def main() -> None:
    steady_allocator()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    parser.add_argument("--name", default="cpu", help="results file name (the machine)")
    parser.add_argument("--runs", type=int, default=2, help="runs per family; cells quote the range")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="where the torch rows run (default: POLYLOSS_BENCH_DEVICE or cpu)")
    parser.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    args = parser.parse_args()
    if args.device is not None:
        os.environ["POLYLOSS_BENCH_DEVICE"] = args.device
    flags = " ".join(f for f in ("--quick" if args.quick else "", f"--runs {args.runs}") if f)
    parts = [f"# polyloss benchmarks: {args.name}", "",
             f"Written by `python benchmarks/run.py --name {args.name} {flags}`; every cell is the range over "
             f"{args.runs} run(s).", "", f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {machine_description()}", ""]
    out = HERE / "results" / f"{args.name}.md"
    for family in args.only.split(","):
        module = importlib.import_module(family)
        runs = []
        for i in range(args.runs):
            print(f"{family}: run {i + 1} of {args.runs}", flush=True)
            runs.append(module.run(args.quick))
        for table in merge(runs):
            text = table.markdown()
            print(text, flush=True)
            parts.append(text)
        out.write_text("\n".join(parts) + "\n")  # after every family: a run cut short keeps what it measured
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
