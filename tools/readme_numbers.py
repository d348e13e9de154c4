"""Write every measured number of README.md from the files the measuring scripts wrote.

README.md holds marked regions, ``<!-- begin: NAME ... -->`` ... ``<!-- end: NAME -->``; this
script renders each region from its source file and replaces it. Nothing between the markers is
edited by hand, and ``tests/test_snippets.py`` fails when a region differs from what its source
renders, so the README cannot drift from the measurements.

============  =====================================  ======================================
region        source                                 written by
============  =====================================  ======================================
demo-table    ``examples/results/demo.json``         ``python examples/demo.py`` (``nox -s demo``),
                                                     copied there with ``--demo``
demo-thin     ``examples/results/demo.json``         the same run (its thin-structure task)
ci-duration   ``.ci/last-run.json``                  ``.ci/run`` (times ``nox -t cpu``)
bench-table   ``benchmarks/results/cpu.md``          ``nox -s bench`` (``benchmarks/run.py``)
============  =====================================  ======================================

    python tools/readme_numbers.py                                # re-render README.md from the sources
    python tools/readme_numbers.py --demo examples/out/demo.json  # adopt a new demo run, then re-render
    python tools/readme_numbers.py --check                        # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_JSON = ROOT / "examples" / "results" / "demo.json"
CI_JSON = ROOT / ".ci" / "last-run.json"
BENCH_MD = ROOT / "benchmarks" / "results" / "cpu.md"
_REGION = re.compile(r"(<!-- begin: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S)


def _machine(m: dict) -> str:
    load = m.get("load_average_1_5_15_min_at_start")
    busy = f", load average {load[0]:.1f} at start" if load else ""
    return f"{m['platform']}, {m['cpus']} CPUs{busy}"


def render_demo(path: Path = DEMO_JSON, root: Path = ROOT) -> str:
    """The demo's table: per loss, mean and per-class held-out IoU and wall time, and how it was measured."""
    d = json.loads(path.read_text())
    v, s = d["versions"], d["settings"]
    classes = [c for c in d["baseline_all_background"] if c != "background"]
    lines = [
        f"Measured by `{d['command']}` on {d['date'][:10]} ({_machine(d['machine'])}; "
        + ", ".join(f"{k} {v[k]}" for k in ("python", "polyloss", "jax", "optax", "numpy")) + "): "
        f"{s['steps']} steps of {s['batch_size']} images per loss, seed {s['seed']}, "
        f"{d['total_seconds']:.0f} s wall time, {d['process_cpu_seconds']:.0f} s of CPU time "
        f"(`{path.relative_to(root)}`).",
        "",
        "| loss | mean IoU | " + " | ".join(classes) + " | wall time |",
        "|---|---:|" + "---:|" * len(classes) + "---:|",
    ]
    for r in d["losses"]:
        pc = r["per_class_iou"]
        lines.append(f"| `{r['label']}` | {r['mean_iou']:.3f} | " + " | ".join(f"{pc[c]:.3f}" for c in classes)
                     + f" | {r['seconds']:.0f} s |")
    base = d["baseline_all_background"]
    lines.append("| all background (baseline) | 0.000 | " + " | ".join(f"{base[c]:.3f}" for c in classes) + " | |")
    return "\n".join(lines) + "\n"


def render_demo_thin(path: Path = DEMO_JSON) -> str:
    """The demo's thin-structure table: per loss, held-out IoU, clDice score, skeleton recall, Betti-0 error."""
    d = json.loads(path.read_text())
    if "thin" not in d:
        return f"`{d['command']}` did not run the thin-structure task.\n"
    t, s = d["thin"], d["thin"]["settings"]
    size = s["image_size"]
    lines = [
        f"The same run: {s['steps']} steps of {s['batch_size']} images per loss on {s['train_size']} training "
        f"images of {size}x{size} pixels (curves cover {s['curve_pixel_share']:.1%} of the pixels), scored on "
        f"{s['eval_size']} held-out images; {t['seconds']:.0f} s wall time for the four losses, compiling the "
        "one step they share included (the per-step times are medians, without it).",
        "",
        "| loss | IoU | clDice score | skeleton recall | Betti-0 error | ms per step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| `{r['label']}` | {r['iou']:.3f} | {r['cldice']:.3f} | {r['skeleton_recall']:.3f} | "
              f"{r['betti0_error']:.2f} | {r['step_ms']:.0f} |" for r in t["losses"]]
    return "\n".join(lines) + "\n"


def render_ci(path: Path = CI_JSON) -> str:
    """How long the README's test command took, as ``.ci/run`` measured it; pending until it has run."""
    if not path.exists():
        return ("Its duration is pending: `.ci/run` times `nox -t cpu` and writes `.ci/last-run.json`, "
                "from which `python tools/readme_numbers.py` fills in this line; no full run has been "
                "committed yet.\n")
    d = json.loads(path.read_text())
    status = "passed" if d["exit_status"] == 0 else f"failed (exit status {d['exit_status']})"
    venvs = "virtual environments already built" if d["venvs_reused"] else "including building the virtual environments"
    return (f"`.ci/run` measured `{d['command']}`: {d['seconds'] / 60:.0f} min ({venvs}), {status}, "
            f"on {d['date'][:10]} ({d['platform']}, {d['cpus']} CPUs, Python {d['python']}; `.ci/last-run.json`).\n")


def _bench_rows(text: str) -> list[tuple[str, str, str, str, float, float, str]]:
    """(section, case, backend, compared implementation, lowest and highest ratio, cell) for every row with a ratio.

    Columns are found by the header (``case``, ``backend``, ``implementation``, ``ours / this``); a ratio
    cell is one value (``1.05x``) or the range of several runs (``1.04-1.05x``).
    """
    rows, section, columns = [], "", {}
    for line in text.splitlines():
        if line.startswith("### "):
            section, columns = line[4:].strip(), {}
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "ours / this" in cells:
            columns = {name: i for i, name in enumerate(cells)}
            continue
        m = re.fullmatch(r"([\d.]+)(?:-([\d.]+))?x", cells[columns["ours / this"]]) if columns else None
        if m:
            lo, hi = float(m[1]), float(m[2] or m[1])
            rows.append((section, cells[columns["case"]], cells[columns["backend"]], cells[columns["implementation"]],
                         lo, hi, m[0]))
    return rows


def render_bench(path: Path = BENCH_MD) -> str:
    """Per benchmark section: the range of polyloss / peer time ratios, and every case where polyloss is slower."""
    text = path.read_text()
    header = {k: v.strip() for k, _, v in (line.partition(": ") for line in text.splitlines()[:10]) if v}
    # The date comes from the file (a `Date: ` line), not from git: a shallow clone would change it.
    date = header.get("Date", "not recorded in the file")
    rows = _bench_rows(text)
    lines = [f"From `{path.relative_to(ROOT)}` (date: {date}; machine: {header.get('Machine', '?')}).", "",
             "| benchmark | cases | polyloss / peer time |", "|---|---:|---|"]
    for section in dict.fromkeys(r[0] for r in rows):
        lo = min(r[4] for r in rows if r[0] == section)
        hi = max(r[5] for r in rows if r[0] == section)
        count = sum(r[0] == section for r in rows)
        lines.append(f"| {section} | {count} | {lo:.2f}x to {hi:.2f}x |")
    slower = [r for r in rows if r[5] > 1.0]
    lines += ["", "Where polyloss takes longer than the compared implementation (ratio above 1):", ""]
    lines += [f"- {case} ({backend}) vs `{impl}`: {cell}" for _, case, backend, impl, _, _, cell in slower]
    lines += [] if slower else ["- none"]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {"demo-table": render_demo, "demo-thin": render_demo_thin,
                                           "ci-duration": render_ci, "bench-table": render_bench}


def regions(text: str) -> dict[str, str]:
    """The body of every marked region of ``text``, by name."""
    return {m["name"]: m["body"] for m in _REGION.finditer(text)}


def rewrite(text: str) -> str:
    """``text`` with every marked region re-rendered from its source (an unknown region name is an error)."""

    def sub(m: re.Match[str]) -> str:
        if m["name"] not in RENDERERS:
            raise SystemExit(f"readme_numbers: no renderer for region {m['name']!r}; known: {sorted(RENDERERS)}")
        return m.group(1) + RENDERERS[m["name"]]() + m.group(4)

    return _REGION.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", type=Path, help="a demo.json written by examples/demo.py: copied to " + str(DEMO_JSON))
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if README.md is out of date")
    args = p.parse_args(argv)
    if args.demo:
        shutil.copyfile(args.demo, DEMO_JSON)
    text = README.read_text()
    new = rewrite(text)
    if args.check:
        stale = [name for name, body in regions(new).items() if regions(text)[name] != body]
        if stale:
            print(f"README.md is stale in {', '.join(stale)}: run python tools/readme_numbers.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"README.md: regions {', '.join(regions(new))} rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
