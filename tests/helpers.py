"""Test-side helpers: the Backend wrapper, conversions, comparisons and random inputs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class Backend:
    """One array backend: its namespace, device, and the test-side conversions."""

    name: str
    xp: ModuleType
    device: Any = None

    @property
    def is_torch(self) -> bool:
        return self.name.startswith("torch")

    @property
    def is_jax(self) -> bool:
        return self.name.startswith("jax")

    @property
    def has_autodiff(self) -> bool:
        return self.is_torch or self.is_jax

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """A NumPy array (or scalar/list) on this backend, keeping NumPy's dtype unless told."""
        a = np.asarray(a)
        if dtype is None:
            dtype = getattr(self.xp, a.dtype.name) if a.dtype != np.bool_ else self.xp.bool
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    def float_dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    def value_and_grad(self, f: Callable[[Any], Any], x: Any) -> tuple[np.ndarray, np.ndarray]:
        """``f(x)`` (a scalar) and its gradient with respect to ``x``, as NumPy."""
        if self.is_torch:
            x = x.detach().clone().requires_grad_(True)
            value = f(x)
            (grad,) = _torch().autograd.grad(value, x)
            return to_numpy(value), to_numpy(grad)
        if self.is_jax:
            import jax

            value, grad = jax.value_and_grad(f)(x)
            return to_numpy(value), to_numpy(grad)
        pytest.skip(f"{self.name} has no automatic differentiation")

    def check_grad(self, f: Callable[[Any], Any], x: np.ndarray, *, eps: float = 1e-6, rtol: float = 1e-5) -> None:
        """The autodiff gradient of scalar ``f`` at float64 ``x`` equals central differences."""
        if not self.has_autodiff:
            pytest.skip(f"{self.name} has no automatic differentiation")
        x = np.asarray(x, dtype=np.float64)
        _, grad = self.value_and_grad(f, self.asarray(x))
        numeric = np.empty_like(x)
        flat = x.reshape(-1)
        for i in range(flat.size):
            plus, minus = flat.copy(), flat.copy()
            plus[i] += eps
            minus[i] -= eps
            hi = to_numpy(f(self.asarray(plus.reshape(x.shape))))
            lo = to_numpy(f(self.asarray(minus.reshape(x.shape))))
            numeric.reshape(-1)[i] = (hi - lo) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=rtol, atol=rtol * max(1.0, np.abs(numeric).max()))


def _torch() -> ModuleType:
    return importlib.import_module("torch")


def to_numpy(x: Any) -> np.ndarray:
    """Any backend's array (or a Python number) as a NumPy float64/int/bool array."""
    if isinstance(x, np.ndarray | np.generic | float | int | bool):
        return np.asarray(x)
    mod = type(x).__module__
    if mod.startswith("torch"):
        x = x.detach()
        if x.dtype in (_torch().bfloat16, _torch().float16):
            x = x.float()
        return x.cpu().numpy()
    if mod.startswith("cupy"):
        return x.get()
    return np.asarray(x)


# The backend of the running test, set by conftest's ``backend`` fixture: assert_close checks arrays against it.
ACTIVE: list[Backend] = []


def _is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic | float | int | bool)


def assert_close(got: Any, want: Any, *, rtol: float = 1e-10, atol: float = 1e-12, dtype: Any = None,
                 backend: Backend | None = None) -> None:
    """``got`` (any backend) equals ``want`` (NumPy) in namespace, device, shape, dtype and value.

    Like SciPy's ``xp_assert_close``: a backend array (anything but NumPy
    and Python numbers) must belong to the running test's backend (its
    namespace, and its device where the backend names one) or to
    ``backend`` if given; a NumPy ``got`` (a value the test converted
    itself) is compared as it is. The shapes must be equal. ``dtype`` (a
    dtype name such as ``"float32"``, or a dtype of ``got``'s namespace)
    is checked when given. Values are compared in float64.
    """
    expected = backend or (ACTIVE[-1] if ACTIVE else None)
    if expected is not None and not _is_numpy(got):
        from array_api_compat import array_namespace, device

        namespace = array_namespace(got)
        assert namespace is expected.xp, f"namespace {namespace.__name__} != backend {expected.name}'s"
        if expected.device is not None:
            assert device(got) == expected.device, f"device {device(got)} != backend {expected.name}'s"
    if dtype is not None:
        if isinstance(dtype, str):
            xp = expected.xp if expected is not None and not _is_numpy(got) else np
            dtype = getattr(xp, dtype)
        assert got.dtype == dtype, f"dtype {got.dtype} != expected {dtype}"
    got = to_numpy(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != expected {want.shape}"
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


def assert_finite(*arrays: Any) -> None:
    for a in arrays:
        assert np.all(np.isfinite(to_numpy(a).astype(np.float64))), f"non-finite values in {to_numpy(a)}"


def random_logits(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 2.0) -> np.ndarray:
    return rng.normal(scale=scale, size=shape)


def random_labels(
    rng: np.random.Generator, shape: tuple[int, ...], num_classes: int, *, ignore_index: int | None = None,
    ignore_share: float = 0.2,
) -> np.ndarray:
    """Integer labels in [0, C) with every class present where the shape allows; some ignored if asked."""
    labels = rng.integers(0, num_classes, size=shape)
    flat = labels.reshape(-1)
    if flat.size >= num_classes:
        flat[rng.permutation(flat.size)[:num_classes]] = np.arange(num_classes)
    if ignore_index is not None:
        flat[rng.random(flat.size) < ignore_share] = ignore_index
    return labels


def random_probabilities(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray:
    e = np.exp(rng.normal(size=shape))
    return e / e.sum(axis=axis, keepdims=True)


def random_binary(rng: np.random.Generator, shape: tuple[int, ...], share: float = 0.3) -> np.ndarray:
    return (rng.random(shape) < share).astype(np.float64)
