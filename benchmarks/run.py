"""Every family benchmark in one run: prints the tables and writes benchmarks/results/<name>.md.

Run: python benchmarks/run.py [--quick] [--name cpu] [--only pixelwise,region,...]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _harness import machine_description, steady_allocator  # noqa: E402

FAMILIES = ["pixelwise", "region", "lovasz", "distance", "detection"]


def main() -> None:
    steady_allocator()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    parser.add_argument("--name", default="cpu", help="results file name (the machine)")
    parser.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    args = parser.parse_args()
    parts = [f"# polyloss benchmarks: {args.name}", "", f"Machine: {machine_description()}", ""]
    for family in args.only.split(","):
        for table in importlib.import_module(family).run(args.quick):
            text = table.markdown()
            print(text, flush=True)
            parts.append(text)
    out = HERE / "results" / f"{args.name}.md"
    out.write_text("\n".join(parts) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
