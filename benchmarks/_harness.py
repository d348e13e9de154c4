"""Timing harness shared by the family benchmarks.

Method: every implementation of one case is warmed up, then timed in
interleaved rounds (A B C A B C ...) so that drift in machine load hits all
of them alike; each reports the median over rounds. A step is forward plus
backward and ends with a device sync (``block_until_ready`` / CUDA sync).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Step = Callable[[], Any]


def measure(impls: dict[str, Step], *, rounds: int = 15, warmup: int = 2, min_time: float = 0.02) -> dict[str, float]:
    """Median seconds per call of each step, timed in interleaved rounds.

    Each round calls a step ``k`` times, with ``k`` chosen in warm-up so that a
    round lasts at least ``min_time``; tiny inputs then measure per-call
    overhead rather than timer resolution.
    """
    reps: dict[str, int] = {}
    for name, step in impls.items():
        for _ in range(warmup):
            step()
        t0 = time.perf_counter()
        step()
        once = max(time.perf_counter() - t0, 1e-7)
        reps[name] = max(1, int(min_time / once))
    samples: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(rounds):
        for name, step in impls.items():
            k = reps[name]
            t0 = time.perf_counter()
            for _ in range(k):
                step()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(s) for name, s in samples.items()}


def optional_import(name: str) -> Any:
    """The module, or None where it does not import (absent, or a peer broken beside this torch build)."""
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def torch_step(loss: Callable[..., Any], x: Any, *rest: Any) -> Step:
    """Forward + backward of ``loss(x, *rest)`` with respect to ``x`` in torch eager."""
    import torch

    x = x.detach().clone().requires_grad_(True)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def step() -> None:
        x.grad = None
        loss(x, *rest).backward()
        sync()

    return step


def jax_step(loss: Callable[..., Any], x: Any, *rest: Any) -> Step:
    """``jax.jit(jax.value_and_grad(loss))(x, *rest)``, blocked until ready."""
    import jax

    f = jax.jit(jax.value_and_grad(loss))

    def step() -> None:
        jax.block_until_ready(f(x, *rest))

    return step


@dataclass
class Table:
    """A benchmark table: one row per (case, implementation), ratio against ``ours``."""

    title: str
    command: str
    rows: list[tuple[str, str, str, float, float | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, case: str, backend: str, times: dict[str, float], ours: str = "polyloss") -> None:
        """Record one case: ``times`` maps implementation name -> seconds; ratios are ours / peer."""
        for impl, seconds in times.items():
            ratio = None if impl == ours else times[ours] / seconds
            self.rows.append((case, backend, impl, seconds, ratio))

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"Command: `{self.command}`",
            "",
            "| case | backend | implementation | median ms | ours / this |",
            "|---|---|---|---:|---:|",
        ]
        for case, backend, impl, seconds, ratio in self.rows:
            r = "" if ratio is None else f"{ratio:.2f}x"
            lines.append(f"| {case} | {backend} | {impl} | {seconds * 1e3:.3f} | {r} |")
        lines += [""] + [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        return "\n".join(lines)


# glibc returns freed large blocks to the OS and maps new ones fresh, so each large tensor costs page faults
# that swing timings by 10-30% from run to run. Benchmarks run with both off (the same for every peer).
STEADY_ALLOCATOR = {"MALLOC_TRIM_THRESHOLD_": str(1 << 32), "MALLOC_MMAP_THRESHOLD_": str(1 << 32)}


def steady_allocator() -> None:
    """Re-execute this script with ``STEADY_ALLOCATOR`` in the environment, unless it is there already."""
    if any(os.environ.get(k) != v for k, v in STEADY_ALLOCATOR.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STEADY_ALLOCATOR})


def main(run: Callable[[bool], list[Table]], description: str | None) -> None:
    """The command line of a family script: ``--quick`` for small inputs; prints its tables."""
    steady_allocator()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    for table in run(parser.parse_args().quick):
        print(table.markdown())


def machine_description() -> str:
    parts = [platform.platform(), platform.processor() or platform.machine(), f"python {platform.python_version()}"]
    parts.append(f"{os.cpu_count()} logical CPUs")
    if all(os.environ.get(k) == v for k, v in STEADY_ALLOCATOR.items()):
        parts.append("glibc malloc trimming and mmap off (benchmarks/_harness.py)")
    versions = []
    for mod in ("numpy", "torch", "jax", "array_api_compat"):
        with contextlib.suppress(ImportError):
            versions.append(f"{mod} {__import__(mod).__version__}")
    return "; ".join(parts + versions)
