"""Write every measured number of README.md and docs/benchmarks.md from the files the measuring scripts wrote.

The documents hold marked regions, ``<!-- begin: NAME ... -->`` ... ``<!-- end: NAME -->``; this
script renders each region from its source file and replaces it. Nothing between the markers is
edited by hand, and ``tests/test_snippets.py`` fails when a region differs from what its source
renders, so the documents cannot drift from the measurements.

============  ======================  =============================  ======================================
region        document                source                         written by
============  ======================  =============================  ======================================
demo-table    README.md               ``examples/results/demo.json`` ``python examples/demo.py``
                                                                     (``nox -s demo``), copied there with
                                                                     ``--demo``
demo-thin     README.md               ``examples/results/demo.json`` the same run (its thin-structure task)
ci-duration   README.md               ``.ci/last-run.json``          ``.ci/run`` (times ``nox -t cpu``)
bench-table   docs/benchmarks.md      ``benchmarks/results/cpu.md``  ``nox -s bench`` (``benchmarks/run.py``)
bench-targets docs/benchmarks.md      ``benchmarks/results/cpu.md``  the same run, read against the
                                                                     performance targets (``TARGETS``)
bench-changes docs/benchmarks.md      ``benchmarks/results/cpu.md``  the same run against the one before
                                      and ``cpu-previous.md``        it (polyloss rows: time and memory)
============  ======================  =============================  ======================================

    python tools/readme_numbers.py                                # re-render the documents from the sources
    python tools/readme_numbers.py --demo examples/out/demo.json  # adopt a new demo run, then re-render
    python tools/readme_numbers.py --check                        # exit 1 if a document is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCH_DOC = ROOT / "docs" / "benchmarks.md"
DEMO_JSON = ROOT / "examples" / "results" / "demo.json"
CI_JSON = ROOT / ".ci" / "last-run.json"
BENCH_MD = ROOT / "benchmarks" / "results" / "cpu.md"
# the run before BENCH_MD's (moved aside when a new run is adopted): what "no row slower" is measured against
BENCH_PREVIOUS = ROOT / "benchmarks" / "results" / "cpu-previous.md"
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
    minutes, seconds = divmod(d["seconds"], 60)
    return (f"`.ci/run` measured `{d['command']}`: {d['seconds']} s, {minutes} min {seconds} s ({venvs}), {status}, "
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


class Target(NamedTuple):
    """One performance target, read off a row of the benchmark file (the worst of its runs).

    ``row`` and ``versus`` are (section, case, backend, implementation) regexes, the case matched from its
    start. With ``versus`` the
    measured value is the row's median time over ``versus``'s; without it, the row's ``column``.
    ``cause`` is printed only when the target is missed: the engineers' reading of the profile.
    """

    goal: str
    row: tuple[str, str, str, str]
    column: str
    at_most: float
    cause: str
    versus: tuple[str, str, str, str] | None = None


_REGION_2D, _VOLUME = r"\(8, 21, 128, 128\)", r"\(2, 14, 64, 96, 96\)"
_OURS = "^polyloss$"
# Round three's targets (issue 21) first, then round two's that still stand.
TARGETS = [
    Target("Dice + CE peak extra memory at most 3.2x the logits on the 3-D case",
           ("3-D", rf"dice_cross_entropy_loss {_VOLUME}", "torch", _OURS), "peak / logits", 3.2,
           "the fused pass keeps the probabilities and the gradient alive at once (2x the logits); the cross "
           "entropy adds only (N, ...) label-sized values, the rest is the allocator's slack"),
    Target("Dice + focal peak extra memory at most 3.2x the logits on the 3-D case",
           ("3-D", rf"dice_focal_loss {_VOLUME}", "torch", _OURS), "peak / logits", 3.2,
           "the fused pass keeps the probabilities and the gradient alive at once (2x the logits); the focal "
           "term adds a few label-sized values, the rest is the allocator's slack"),
    Target("Dice + CE time at most 0.6x MONAI `DiceCELoss` on (8, 21, 128, 128)",
           ("Region", rf"dice_cross_entropy_loss {_REGION_2D}", "torch eager", "DiceCELoss"), "ours / this", 0.6,
           "one softmax and one fused backward for both terms; MONAI computes its Dice and "
           "`nn.CrossEntropyLoss` separately, each with its own softmax and autograd graph"),
    Target("Dice + focal time at most 0.6x MONAI `DiceFocalLoss` on (8, 21, 128, 128)",
           ("Region", rf"dice_focal_loss {_REGION_2D}", "torch eager", "DiceFocalLoss"), "ours / this", 0.6,
           "one softmax and one fused backward for both terms; MONAI's focal term is a sigmoid focal loss "
           "over every class of a one-hot target (not the same loss: ours takes the softmax probability of "
           "the labelled class; MONAI is the nearest peer)"),
    Target("Dice + CE time at most 1.3x our own `dice_loss` on (8, 21, 128, 128)",
           ("Region", rf"dice_cross_entropy_loss {_REGION_2D}", "torch eager", _OURS), "median ms", 1.3,
           "the cross entropy shares the fused pass: what it adds is a gather of the log-probabilities at "
           "the labels and its mean; the measure is a ratio of two rows' ranges, so a noisy `dice_loss` row "
           "widens it",
           versus=("Region", rf"dice_loss {_REGION_2D}", "torch eager", _OURS)),
    Target("Dice + focal time at most 1.3x our own `dice_loss` on (8, 21, 128, 128)",
           ("Region", rf"dice_focal_loss {_REGION_2D}", "torch eager", _OURS), "median ms", 1.3,
           "the focal term shares the fused pass as the cross entropy does, and adds the focal weight (1 - "
           "p_t)^gamma and its gradient on the label-sized gathered values; its range straddles the target "
           "(run-to-run spread on the 2-core machine)",
           versus=("Region", rf"dice_loss {_REGION_2D}", "torch eager", _OURS)),
    Target("Lovasz softmax peak extra memory at most 8x the logits (3-D case)",
           ("3-D", rf"lovasz_softmax_loss .*{_VOLUME}", "torch", _OURS), "peak / logits", 8.0,
           "rows are sorted in groups of at most 4M elements (ROW_CHUNK_ELEMENTS), so the sort's int64 "
           "permutation and the Jaccard weights' scratch are a fraction of the logits; what stays is the "
           "probabilities, the errors, the weights at each pixel and the gradient. This column is the "
           "process's resident high-water mark, which also counts the pages glibc's heap reuses for the "
           "many successive temporaries; the tensors alive at once are the next target's column"),
    Target("Lovasz softmax tensor peak at most 8x the logits (3-D case, torch's allocator timeline)",
           ("3-D", rf"lovasz_softmax_loss .*{_VOLUME}", "torch", _OURS), "tensor peak / logits", 8.0,
           "the probabilities, the errors, the weights at each pixel and the gradient stay alive, beside one "
           "group's sort and cumulative sums"),
    Target("Lovasz softmax time at most 0.75x kornia on torch",
           ("Lovasz", rf"lovasz_softmax_loss per_image.*{_REGION_2D}", "torch eager", "kornia"), "ours / this", 0.75,
           "most of the step is the one batched sort, which kornia also pays; the rest is fused into few "
           "passes"),
    Target("`cross_entropy` at most 1.0x `F.cross_entropy`",
           ("Pixel", rf"cross_entropy {_REGION_2D}", "torch eager", "cross_entropy"), "ours / this", 1.0,
           "one native `F.cross_entropy` call plus the eager input checks (the label range check reads one "
           "`aminmax` over the labels back to the host)"),
    Target("`cross_entropy` with `ignore_index` + `weight` at most 1.0x `F.cross_entropy`",
           ("Pixel", rf"cross_entropy ignore_index\+weight {_REGION_2D}", "torch eager", "cross_entropy"),
           "ours / this", 1.0,
           "the mean's denominator now comes from ATen's NLL kernel itself (all-ignored gives 0, not NaN) and "
           "torch skips the ignored labels as given; what remains over the native call is the label check "
           "and the ignore mask, two passes over the (N, H, W) labels"),
    Target("`cross_entropy` per-call overhead at most 1.3x `F.cross_entropy` on (2, 3)",
           ("Pixel", r"cross_entropy \(2, 3\): per-call overhead", "torch eager", "cross_entropy"), "ours / this", 1.3,
           "on six numbers torch's own forward and backward cost a few microseconds; ours adds the input "
           "layer on eager arrays: about 100 Python calls (namespace, option and dtype checks, the label "
           "range read back with `aminmax`, the records). Trimmed this round (no union-type isinstance, "
           "generator or frozen dataclass on the hot path); meeting 1.3x would need the label check folded "
           "into the native kernel, which checks labels itself on CPU"),
    Target("`multibox_loss` at least 5x faster than the per-image loop (ratio at most 0.2x)",
           ("Detection", r"multibox_loss 32 x 8732", "torch eager", "per-image loop"), "ours / this", 0.2,
           "matching and mining are batched and the mining threshold comes from the kth_largest primitive "
           "instead of a full sort; what remains is the cross entropy over every prior (the floor row) and "
           "the IoU matrix of the matching, which the loop pays too"),
    Target("region losses on torch eager: time at most 0.75x kornia's `dice_loss` on (8, 21, 128, 128)",
           ("Region", rf"dice_loss {_REGION_2D}", "torch eager", "kornia"), "ours / this", 0.75,
           "kornia 0.9 has its own fused CPU Dice (softmax, a gather at the labels and a hand-written "
           "backward); ours is the softmax plus about three full passes in eager ops, and twice kornia's "
           "per-call Python and autograd overhead (the input layer's checks, the small (N, C) graph)"),
    Target("Dice peak extra memory at most 2.2x the logits on the 3-D case",
           ("3-D", rf"dice_loss {_VOLUME}", "torch", _OURS), "peak / logits", 2.2,
           "the backward needs the probabilities and the gradient alive at once (2x the logits) plus the "
           "allocator's slack"),
    Target("Lovasz softmax under `jax.jit` within 1.5x of torch eager on the same input",
           ("Lovasz", r"lovasz_softmax_loss per_image.*\(8, 128, 128, 21\)", "jax.jit", _OURS), "median ms", 1.5,
           "XLA's CPU sort of (C, P) float32 rows with a carried permutation is slower than torch's",
           versus=("Lovasz", rf"lovasz_softmax_loss per_image.*{_REGION_2D}", "torch eager", _OURS)),
    Target("JAX jit: every region loss at or below the hand-fused `jax.numpy` version",
           ("Region", r".*\(8, 128, 128, 21\)", "jax.jit", "fused jax.numpy"), "ours / this", 1.0,
           "XLA fuses the hand-written version into fewer passes than our general statistics (ignore mask, "
           "weights, soft-label form) leave it"),
]


def _table_rows(text: str) -> list[dict[str, str]]:
    """Every data row of every table in ``text``, as {column: cell}, with its section under ``"section"``."""
    rows, section, header = [], "", None
    for line in text.splitlines():
        if line.startswith("### "):
            section, header = line[4:].strip(), None
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            rows.append({"section": section, **dict(zip(header, cells, strict=False))})
    return rows


def _range(cell: str) -> tuple[float, float] | None:
    """The lowest and highest value of a cell: ``1.05x``, ``1.04-1.05x``, ``3.520`` or ``3.5-3.6``; None if empty."""
    m = re.fullmatch(r"([\d.]+)(?:-([\d.]+))?x?", cell)
    return None if not m else (float(m[1]), float(m[2] or m[1]))


def _find(rows: list[dict[str, str]], key: tuple[str, str, str, str]) -> list[dict[str, str]]:
    section, case, backend, impl = key
    return [r for r in rows if re.search(section, r["section"]) and re.match(case, r.get("case", ""))
            and re.search(backend, r.get("backend", "")) and re.search(impl, r.get("implementation", ""))]


def render_targets(path: Path = BENCH_MD) -> str:
    """The performance targets against the benchmark file: the measured range, met (every run) or missed, and why."""
    rows = _table_rows(path.read_text())
    lines = ["| target | measured | |", "|---|---:|---|"]
    causes = []
    for t in TARGETS:
        found = [v for r in _find(rows, t.row) if (v := _range(r.get(t.column, ""))) is not None]
        if t.versus is not None and found:
            base = [v for r in _find(rows, t.versus) if (v := _range(r.get(t.column, ""))) is not None]
            # the ratio's range: fastest over slowest to slowest over fastest
            found = [(lo / base[0][1], hi / base[0][0]) for lo, hi in found] if base else []
        if not found:
            lines.append(f"| {t.goal} | not in the file | |")
            continue
        best, worst = min(v[0] for v in found), max(v[1] for v in found)
        ok = worst <= t.at_most
        shown = f"{worst:.2f}x" if f"{best:.2f}" == f"{worst:.2f}" else f"{best:.2f}-{worst:.2f}x"
        lines.append(f"| {t.goal} | {shown} | {'met' if ok else 'missed'} |")
        if not ok:
            causes.append(f"- {t.goal}: {shown}. {t.cause[0].upper()}{t.cause[1:]}.")
    if causes:
        lines += ["", "Why the missed targets are missed:", "", *causes]
    return "\n".join(lines) + "\n"


def render_bench_changes(path: Path = BENCH_MD, previous: Path = BENCH_PREVIOUS, slack: float = 1.10) -> str:
    """Every polyloss row of both runs, now against then: the rows that grew.

    Where a case has a peer, its time is compared as the ratio to that peer in the same run (``ours /
    this``), which cancels what changed on the machine between the runs (the peers' own times moved by up
    to 2x between days); where it has none, as its median time. Peak extra memory is compared directly.
    A row grew when even its best now is more than ``slack`` times its worst then (each file holds the
    range over its runs), so that run-to-run noise does not count.
    """
    def index(text: str) -> dict[tuple[str, str, str, str], dict[str, str]]:
        return {(r["section"], r["case"], r["backend"], r.get("implementation", "")): r for r in _table_rows(text)}

    new_text, old_text = path.read_text(), previous.read_text()
    new, old = index(new_text), index(old_text)
    date = next((line[6:] for line in old_text.splitlines() if line.startswith("Date: ")), "?")
    with_peer = {k[:3] for k, r in new.items() if _range(r.get("ours / this", "")) is not None}
    comparisons = {  # what: (rows, column)
        "time relative to a peer (ours / peer)": ([k for k in new.keys() & old.keys()
                                                   if _range(new[k].get("ours / this", ""))], "ours / this"),
        "time, cases without a peer (median ms)": ([k for k in new.keys() & old.keys()
                                                    if k[3] == "polyloss" and k[:3] not in with_peer], "median ms"),
        "peak extra memory (MiB)": ([k for k in new.keys() & old.keys() if k[3] == "polyloss"], "peak extra MiB"),
    }
    lines = [f"Against `{previous.relative_to(ROOT)}` (the run before, date: {date}).", ""]
    for what, (keys, column) in comparisons.items():
        ratios, grew = [], []
        for key in sorted(keys):
            now, then = _range(new[key].get(column, "")), _range(old[key].get(column, ""))
            if now is None or then is None or min(then) == 0:
                continue
            ratios.append((now[0] / then[1], now[1] / then[0]))
            if now[0] > slack * then[1]:
                versus = f" vs `{key[3]}`" if key[3] != "polyloss" else ""
                grew.append(f"  - {key[1]} ({key[2]}){versus}: {new[key][column]} now, {old[key][column]} then")
        if ratios:
            lines.append(f"- {what}, now / then over {len(ratios)} rows: {min(r[0] for r in ratios):.2f}x to "
                         f"{max(r[1] for r in ratios):.2f}x; more than {slack:.2f}x beyond both ranges: "
                         f"{len(grew) or 'none'}")
            lines += grew
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {"demo-table": render_demo, "demo-thin": render_demo_thin,
                                           "ci-duration": render_ci, "bench-table": render_bench,
                                           "bench-targets": render_targets, "bench-changes": render_bench_changes}
# which document holds which regions (each region lives in exactly one)
DOCUMENTS: dict[Path, tuple[str, ...]] = {README: ("demo-table", "demo-thin", "ci-duration"),
                                          BENCH_DOC: ("bench-table", "bench-targets", "bench-changes")}


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
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a document is out of date")
    args = p.parse_args(argv)
    if args.demo:
        shutil.copyfile(args.demo, DEMO_JSON)
    stale = []
    for path in DOCUMENTS:
        text = path.read_text()
        new = rewrite(text)
        name = path.relative_to(ROOT)
        if args.check:
            stale += [f"{name}: {region}" for region, body in regions(new).items() if regions(text)[region] != body]
            continue
        path.write_text(new)
        print(f"{name}: regions {', '.join(regions(new))} rendered")
    if stale:
        print(f"stale: {'; '.join(stale)}: run python tools/readme_numbers.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
