"""Timing harness shared by the family benchmarks.

Method: every implementation of one case is warmed up, then timed in
interleaved rounds (A B C A B C ...) so that drift in machine load hits all
of them alike; each reports the median over rounds. A step is forward plus
backward and ends with a device sync (``block_until_ready`` / CUDA sync).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
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


class TorchStep:
    """Forward + backward of ``loss(x, *rest)`` with respect to ``x`` in torch eager (CPU or CUDA)."""

    def __init__(self, loss: Callable[..., Any], x: Any, *rest: Any) -> None:
        import torch

        self.x = x.detach().clone().requires_grad_(True)
        self.loss, self.rest = loss, rest
        self.sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def __call__(self) -> None:
        self.x.grad = None
        self.loss(self.x, *self.rest).backward()
        self.sync()

    def reset(self) -> None:
        """Drop the gradient the last call left, so a memory measurement starts from the inputs alone."""
        self.x.grad = None


class TorchForward(TorchStep):
    """``loss(x, *rest)`` under ``torch.no_grad()`` (matching and assignment run without gradient)."""

    def __call__(self) -> None:
        import torch

        with torch.no_grad():
            self.loss(self.x, *self.rest)
        self.sync()


class JaxStep:
    """``jax.jit(jax.value_and_grad(loss))(x, *rest)``, blocked until ready."""

    def __init__(self, loss: Callable[..., Any], x: Any, *rest: Any) -> None:
        import jax

        self.f, self.args = jax.jit(jax.value_and_grad(loss)), (x, *rest)

    def __call__(self) -> None:
        import jax

        jax.block_until_ready(self.f(*self.args))

    def reset(self) -> None:
        pass


def torch_step(loss: Callable[..., Any], x: Any, *rest: Any) -> TorchStep:
    """Forward + backward of ``loss(x, *rest)`` with respect to ``x`` in torch eager."""
    return TorchStep(loss, x, *rest)


def torch_forward(fn: Callable[..., Any], x: Any, *rest: Any) -> TorchForward:
    """``fn(x, *rest)`` in torch eager without gradient: a forward-only step (memory measurable like a TorchStep)."""
    return TorchForward(fn, x, *rest)


def jax_step(loss: Callable[..., Any], x: Any, *rest: Any) -> JaxStep:
    """``jax.jit(jax.value_and_grad(loss))(x, *rest)``, blocked until ready."""
    return JaxStep(loss, x, *rest)


def floor_step(x: Any) -> Step:
    """The memory traffic no loss of ``x`` avoids: read the logits once, write a dense gradient of their size.

    torch: ``x.sum()`` forward + backward (autograd materialises the expanded ones as ``x.grad``);
    JAX: ``jax.jit(jax.value_and_grad(jnp.sum))``.
    """
    if type(x).__module__.startswith("torch"):
        return TorchStep(lambda a: a.sum(), x)
    return JaxStep(lambda a: a.sum(), x)


def nbytes(x: Any) -> int:
    return int(x.numel() * x.element_size()) if hasattr(x, "element_size") else int(x.nbytes)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter

# Below this size of logits the resident-memory method measures pages and allocator arenas, not the loss.
RSS_RESOLUTION = 1 << 18


def peak_extra_bytes(step: Step) -> int | None:
    """Peak memory one call of ``step`` (already warmed up) adds to what its inputs hold; None where unknown.

    torch CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the call.
    JAX: the compiled executable's ``memory_analysis()``: temporaries plus outputs (the value and the
    gradient) minus what aliases the arguments.
    torch CPU (Linux): the process's resident high-water mark (``VmHWM``) minus its resident size before
    the call, after ``malloc_trim(0)`` returned every free heap page to the kernel and
    ``/proc/self/clear_refs`` reset the mark: so pages freed by an earlier case cannot hide this one's
    allocations, and no fresh process (an import of torch) is needed per case. Every peer is measured
    the same way; the number includes the gradient (1x the logits, which nothing avoids). None for
    logits under ``RSS_RESOLUTION`` bytes, where that method has no resolution.
    """
    if isinstance(step, JaxStep):
        ma = step.f.lower(*step.args).compile().memory_analysis()
        if ma is None:
            return None
        return int(ma.temp_size_in_bytes + ma.output_size_in_bytes - ma.alias_size_in_bytes)
    if not isinstance(step, TorchStep):
        return None
    import torch

    step.reset()
    if step.x.is_cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated() - base
    elif nbytes(step.x) < RSS_RESOLUTION:
        return None
    else:
        try:
            libc = ctypes.CDLL("libc.so.6")
            # Blocks above 128 KiB mmapped for this call, so a freed block leaves the resident set at once and
            # the mark follows the live bytes (with STEADY_ALLOCATOR's heap, freed holes stayed resident and a
            # fragmented heap read 1.5x high on Lovasz); restored after, for the timings.
            libc.mallopt(M_MMAP_THRESHOLD, 1 << 17)
            libc.malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base = _rss_kib("VmRSS")
            step()
            peak = (_rss_kib("VmHWM") - base) * 1024
            libc.mallopt(M_MMAP_THRESHOLD, int(STEADY_ALLOCATOR["MALLOC_MMAP_THRESHOLD_"]))
        except OSError:
            return None
    step.reset()
    return max(int(peak), 0)


def peak_tensor_bytes(step: Step) -> int | None:
    """Peak bytes of torch tensors that one call of a torch CPU ``step`` allocates and holds at once; None
    elsewhere.

    From the profiler's memory timeline (``torch.profiler._memory_profiler``, a private module of the pinned
    torch): every allocation and free of the CPU allocator during the call, in order, counting tensors created
    in the call (the gradient left on the input included, as in ``peak_extra_bytes``). Live bytes exactly,
    where the resident mark of ``peak_extra_bytes`` also counts pages that glibc's heap reused for successive
    temporaries (on Lovasz-Softmax's 3-D case it read well above the live tensors); but host buffers outside
    torch's allocator (NumPy, SciPy) are not seen.
    """
    if not isinstance(step, TorchStep) or step.x.is_cuda:
        return None
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, MemoryProfile

    step.reset()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as prof:
        step()
    step.reset()
    live, peak, created = 0, 0, set()
    for _, action, key, size in MemoryProfile(prof.profiler.kineto_results).timeline:
        if action == Action.CREATE:
            created.add(key)
            live += size
        elif action == Action.DESTROY and key in created:
            live -= size
        peak = max(peak, live)
    return peak


FLOOR = "floor"


@dataclass
class Row:
    """One (case, implementation) row; each metric holds one value per run (ranges when runs differ)."""

    case: str
    backend: str
    impl: str
    seconds: list[float]
    ratio: list[float]  # ours / this; empty on our own row
    floor: list[float]  # time / the floor step's time in the same rounds; empty where not measured
    peak: list[float]  # peak extra bytes; empty where not measured
    peak_ratio: list[float]  # peak extra / bytes of the logits
    tensor_ratio: list[float] = field(default_factory=list)  # peak tensor bytes / bytes of the logits (torch CPU)


@dataclass
class Table:
    """A benchmark table: one row per (case, implementation), ratio against ``ours``."""

    title: str
    command: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, case: str, backend: str, times: dict[str, float], ours: str = "polyloss", *,
            floor: float | None = None, peaks: dict[str, int | None] | None = None,
            logits_bytes: int | None = None, tensor_peaks: dict[str, int | None] | None = None) -> None:
        """Record one case: ``times`` maps implementation name -> seconds; ratios are ours / peer."""
        for impl, seconds in times.items():
            peak, tensors = (peaks or {}).get(impl), (tensor_peaks or {}).get(impl)
            self.rows.append(Row(
                case, backend, impl, [seconds],
                [] if impl == ours else [times[ours] / seconds],
                [] if floor is None else [seconds / floor],
                [] if peak is None else [float(peak)],
                [] if peak is None or not logits_bytes else [peak / logits_bytes],
                [] if tensors is None or not logits_bytes else [tensors / logits_bytes],
            ))

    def bench(self, case: str, backend: str, impls: dict[str, Step], x: Any, *, rounds: int = 15,
              ours: str = "polyloss") -> None:
        """Time ``impls`` and the floor of ``x`` (the logits) in the same interleaved rounds, then measure
        each implementation's peak extra memory (``peak_extra_bytes``, ``peak_tensor_bytes``) and record the
        case."""
        times = measure({**impls, FLOOR: floor_step(x)}, rounds=rounds)
        floor = times.pop(FLOOR)
        peaks = {name: peak_extra_bytes(step) for name, step in impls.items()}
        big = nbytes(x) >= RSS_RESOLUTION  # the tensor peak of a tiny case says nothing the time does not
        tensor_peaks = {name: peak_tensor_bytes(step) if big else None for name, step in impls.items()}
        self.add(case, backend, times, ours, floor=floor, peaks=peaks, logits_bytes=nbytes(x),
                 tensor_peaks=tensor_peaks)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"Command: `{self.command}`",
            "",
            "| case | backend | implementation | median ms | ours / this | time / floor | peak extra MiB "
            "| peak / logits | tensor peak / logits |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            cells = [_span([s * 1e3 for s in r.seconds], "{:.3f}"), _span(r.ratio, "{:.2f}x"),
                     _span(r.floor, "{:.1f}x"), _span([b / 2**20 for b in r.peak], "{:.1f}"),
                     _span(r.peak_ratio, "{:.2f}x"), _span(r.tensor_ratio, "{:.2f}x")]
            lines.append(f"| {r.case} | {r.backend} | {r.impl} | " + " | ".join(cells) + " |")
        lines += [""] + [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        return "\n".join(lines)


def _span(values: list[float], spec: str) -> str:
    """One value, or the range ``lo-hi`` over runs (one value where both ends round alike)."""
    if not values:
        return ""
    lo, hi = spec.format(min(values)), spec.format(max(values))
    if lo == hi:
        return lo
    return f"{lo.rstrip('x')}-{hi}"


def merge(runs: list[list[Table]]) -> list[Table]:
    """Tables of repeated runs (same cases in the same order) as one set whose cells are ranges."""
    out = []
    for tables in zip(*runs, strict=True):
        first = tables[0]
        merged = Table(first.title, first.command, notes=list(dict.fromkeys(n for t in tables for n in t.notes)))
        for rows in zip(*(t.rows for t in tables), strict=True):
            r0 = rows[0]
            merged.rows.append(Row(r0.case, r0.backend, r0.impl, *(
                [v for r in rows for v in getattr(r, name)]
                for name in ("seconds", "ratio", "floor", "peak", "peak_ratio", "tensor_ratio"))))
        out.append(merged)
    return out


FLOOR_NOTE = ("time / floor: the row's time over that of `x.sum()` forward + backward on the same logits in the "
              "same interleaved rounds (read the logits once, write a dense gradient: the traffic no loss avoids). "
              "Peak extra: memory one forward + backward adds to its inputs, the gradient included (1.00x of the "
              "logits is the floor): torch CPU by the resident high-water mark after malloc_trim, torch CUDA by "
              "torch.cuda.max_memory_allocated, JAX by the compiled executable's memory_analysis(). Tensor peak "
              "(torch CPU): the torch tensors one call holds at once, from the profiler's memory timeline "
              "(peak_tensor_bytes: exact live bytes, which the resident mark overstates where the heap reuses "
              "freed pages; host buffers outside torch are not counted)")


def torch_device() -> str:
    """Where the torch rows run: ``POLYLOSS_BENCH_DEVICE`` (``cpu``, the default, or ``cuda``)."""
    return os.environ.get("POLYLOSS_BENCH_DEVICE", "cpu")


def torch_backend_name() -> str:
    return "torch eager" if torch_device() == "cpu" else f"torch eager {torch_device()}"


# glibc returns freed large blocks to the OS and maps new ones fresh, so each large tensor costs page faults
# that swing timings by 10-30% from run to run. Benchmarks run with both off (the same for every peer).
# 1 GiB: glibc 2.36 ignores a larger value (1 << 32 left every 44 MiB tensor mmapped, 2688 page faults each).
STEADY_ALLOCATOR = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 30)}


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
