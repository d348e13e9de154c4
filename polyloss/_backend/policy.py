"""When a value check may read an array: the check policy and the host-device test.

A value check (labels in range, targets in [0, 1], non-negative weights)
reads array values back to Python. That is free for a NumPy array, cheap for
a CPU tensor, and a pipeline stall on an accelerator (a CUDA tensor, CuPy, JAX
on a GPU), where every loss call would wait for the device once. So by
default (``"auto"``) values are read on host arrays only; elsewhere, as under
``jax.jit``, an invalid value makes the loss NaN. ``set_checks("always")``
reads them on every concrete array (a debugging aid on GPU);
``set_checks("never")`` reads none (the NaN rule everywhere).

``on_host`` is looked up through this module (``policy.on_host``) by its
callers, so the host-read test can declare CPU arrays to be accelerator ones.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

CheckPolicy = Literal["auto", "always", "never"]
POLICIES: tuple[str, ...] = ("auto", "always", "never")
_state: dict[str, str] = {"checks": "auto"}


def set_checks(mode: CheckPolicy, /) -> CheckPolicy:
    """Choose when polyloss reads array values to validate them; returns the previous mode.

    Value checks (labels in ``[0, C)``, sigmoid targets in ``[0, 1]``,
    non-negative masks and weights...) need the values on the host. Shape,
    dtype and option checks always run; this switch concerns only the checks
    that read values:

    - ``"auto"`` (default): on host arrays (NumPy, array-api-strict, CPU
      tensors, JAX on CPU) an invalid value raises a ``ValueError``; on
      accelerator arrays (CUDA tensors, CuPy, JAX on GPU) nothing is read back,
      so a call never waits for the device, and an invalid value makes the
      returned loss NaN, as under ``jax.jit``.
    - ``"always"``: read and check every concrete array, accelerators included
      (one device-to-host sync per check; for debugging).
    - ``"never"``: read nothing; invalid values make the loss NaN everywhere.

    Traced arrays (``jax.jit``, ``torch.compile``, ``torch.func``) are never
    read, whatever the mode. The mode is global to the process.

    Args:
        mode: ``"auto"``, ``"always"`` or ``"never"``.

    Returns:
        The mode in force before the call, so that it can be restored.

    Raises:
        ValueError: ``mode`` is not one of the three.

    Example:
        >>> import polyloss as pl
        >>> previous = pl.set_checks("always")
        >>> pl.set_checks(previous)
        'always'

    References:
        docs/conventions.md, "Usage modes" (host syncs on accelerators).
    """
    if not isinstance(mode, str) or mode not in POLICIES:
        raise ValueError(f"set_checks: mode must be one of 'auto', 'always', 'never', got {mode!r}")
    previous = _state["checks"]
    _state["checks"] = mode
    return previous  # type: ignore[return-value]


def checks_policy() -> str:
    """The mode ``set_checks`` chose last."""
    return _state["checks"]


def on_host(x: Any) -> bool:
    """True when ``x`` lives in host memory: reading it back costs no device synchronisation.

    Torch tensors on the ``cpu`` device, JAX arrays whose devices are all CPUs,
    NumPy and other namespaces with a CPU device (array-api-strict); False for
    CUDA/MPS/XLA tensors, JAX on a GPU or TPU, and CuPy.
    """
    module = type(x).__module__
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return bool(x.device.type == "cpu")
    if module.startswith("jax"):
        return all(d.platform == "cpu" for d in x.devices())
    return not module.startswith("cupy")
