"""Float64 NumPy references shared by the test modules (independent of polyloss: NumPy only)."""

from __future__ import annotations

import numpy as np


def np_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``x - log(sum(exp(x), axis))``, shifted by the maximum."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, written per sign so that neither tail overflows."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def np_log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(sigmoid(x)) = -log(1 + exp(-x))``, exact in both tails."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def np_one_hot(labels: np.ndarray, num_classes: int, axis: int = 1) -> np.ndarray:
    """Float64 one-hot of integer ``labels``, the class axis inserted at ``axis``."""
    return np.moveaxis(np.eye(num_classes)[labels], -1, axis)
