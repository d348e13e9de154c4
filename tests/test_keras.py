"""polyloss losses as Keras 3 losses, on Keras's JAX and torch backends (run in a subprocess each)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras, polyloss as pl
    from array_api_compat import array_namespace
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 9, 7, 3)).astype("float32")
    # Labels a per-pixel linear map can learn, so training must lower the loss (random labels need not).
    y = np.argmax(x @ rng.standard_normal((3, 4)), axis=-1)
    model = keras.Sequential([keras.Input((9, 7, 3)), keras.layers.Conv2D(4, 1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=pl.keras_loss(pl.cross_entropy, integer_targets=True, class_axis=-1))
    history = model.fit(x, y, epochs=20, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0], history
    logits = model.predict(x, verbose=0)
    want = float(pl.cross_entropy(logits, y, class_axis=-1))  # NumPy, outside Keras
    got = model.evaluate(x, y, verbose=0)
    assert abs(got - want) < 1e-4 * max(1.0, want), (got, want)
    print("ok", keras.backend.backend(), history[0], history[-1])
    """
)


def test_keras_trains_and_evaluates_with_a_polyloss_loss(backend):
    keras_backend = backend.name
    if keras_backend not in ("jax", "torch"):
        pytest.skip(f"Keras 3 has no {backend.name} backend")
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed in this session")
    env = dict(os.environ, KERAS_BACKEND=keras_backend)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(f"ok {keras_backend}")
