"""Distance transforms, signed distance maps and U-Net weights against scipy.ndimage in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, random_labels, random_logits, to_numpy

import polyloss as pl

ndimage = pytest.importorskip("scipy.ndimage")

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# --------------------------------------------------------------------------- #
# float64 references: scipy.ndimage per image, plain loops
# --------------------------------------------------------------------------- #


def diagonal(spatial, sampling):
    s = np.broadcast_to(1.0 if sampling is None else sampling, (len(spatial),))
    return math.sqrt(sum((n * si) ** 2 for n, si in zip(spatial, s, strict=True)))


def edt_reference(mask, nd, sampling=None):
    """scipy's EDT per image; an image with no zero gets its diagonal (our documented convention)."""
    spatial = mask.shape[mask.ndim - nd :]
    images = mask.reshape(-1, *spatial) != 0
    out = []
    for image in images:
        if image.all():
            out.append(np.full(spatial, diagonal(spatial, sampling)))
        else:
            out.append(ndimage.distance_transform_edt(image, sampling=sampling))
    return np.stack(out).reshape(mask.shape)


def sdm_reference(mask, nd, sampling=None):
    """Kervadec's one_hot2dist per image, with the finest spacing as the inner offset."""
    spatial = mask.shape[mask.ndim - nd :]
    s_min = 1.0 if sampling is None else float(np.min(sampling))
    out = []
    for image in mask.reshape(-1, *spatial) != 0:
        if not image.any():
            out.append(np.zeros(spatial))
            continue
        inside = edt_reference(image.astype(float), nd, sampling)
        outside = ndimage.distance_transform_edt(~image, sampling=sampling)
        out.append(np.where(image, s_min - inside, outside))
    return np.stack(out).reshape(mask.shape)


def unet_reference(labels, k, w0, sigma, class_weight, nd):
    spatial = labels.shape[labels.ndim - nd :]
    out = []
    for image in labels.reshape(-1, *spatial):
        bg = image == 0
        if class_weight is None:
            p = image.size
            w_bg = p / (2 * bg.sum()) if bg.any() else 1.0
            w_fg = p / (2 * (~bg).sum()) if (~bg).any() else 1.0
        else:
            w_bg, w_fg = class_weight
        w = np.where(bg, w_bg, w_fg).astype(float)
        dists = []
        for i in range(1, k + 1):
            inst = image == i
            dists.append(ndimage.distance_transform_edt(~inst) if inst.any() else np.full(spatial, np.inf))
        dists = np.sort(np.stack(dists), axis=0) if dists else np.zeros((0, *spatial))
        if len(dists) >= 2:
            d1, d2 = dists[0], dists[1]
            border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
            w = w + np.where(bg & np.isfinite(d2), border, 0.0)
        out.append(w)
    return np.stack(out).reshape(labels.shape)


def random_mask(rng, shape, share=0.7):
    """Random foreground with a few all-foreground and all-background images mixed in."""
    m = rng.random(shape) < share
    return m


def tol(backend, got):
    """float32 results (torch, JAX without x64) are compared at float32 precision."""
    return 1e-5 if "32" in str(got.dtype) else 1e-10


# --------------------------------------------------------------------------- #
# distance_transform
# --------------------------------------------------------------------------- #

EDT_CASES = {
    "2d": ((3, 9, 11), 2, None),
    "2d-aniso-batch2": ((2, 2, 7, 10), 2, (1.7, 0.6)),
    "3d": ((2, 5, 6, 7), 3, None),
    "3d-aniso": ((1, 6, 4, 5), 3, (0.5, 2.0, 1.3)),
    "1d": ((4, 13), 1, 2.5),
}


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("case", list(EDT_CASES))
def test_distance_transform_matches_scipy(backend, rng, case, native):
    shape, nd, sampling = EDT_CASES[case]
    mask = random_mask(rng, shape, share=rng.uniform(0.5, 0.95))
    flat = mask.reshape(-1, *shape[len(shape) - nd :])
    flat[0] = True  # an image with no zero
    if len(flat) > 2:
        flat[1] = False  # an image of zeros
    got = pl.distance_transform(backend.asarray(mask), spatial_ndim=nd, sampling=sampling, native=native)
    assert_close(got, edt_reference(mask, nd, sampling), rtol=tol(backend, got), atol=1e-5)


@pytest.mark.parametrize("mask_dtype", ["bool", "int32", "float32", "float64"])
def test_distance_transform_any_mask_dtype_and_output_dtype(backend, rng, mask_dtype):
    mask = random_mask(rng, (2, 6, 5))
    m = backend.asarray(mask.astype(mask_dtype))
    got = pl.distance_transform(m, native=False)
    if mask_dtype.startswith("float"):
        assert got.dtype == m.dtype
    assert_close(got, edt_reference(mask, 2), rtol=tol(backend, got), atol=1e-5)
    got64 = pl.distance_transform(m, dtype=backend.xp.float64)
    assert got64.dtype == backend.xp.float64


def test_distance_transform_chunked_minimum(backend, rng, monkeypatch):
    """The chunked exact minimum gives the same result whatever the chunk size."""
    from polyloss._backend import generic

    monkeypatch.setattr(generic, "CHUNK_ELEMENTS", 1)  # one row of x per chunk
    mask = random_mask(rng, (2, 5, 6, 4), share=0.8)
    got = pl.distance_transform(backend.asarray(mask), spatial_ndim=3, sampling=(1.0, 2.0, 0.5), native=False)
    assert_close(got, edt_reference(mask, 3, (1.0, 2.0, 0.5)), rtol=tol(backend, got), atol=1e-5)


def test_distance_transform_single_zero_reaches_far_corner(backend):
    mask = np.ones((1, 9, 14), dtype=bool)
    mask[0, 0, 0] = False
    got = pl.distance_transform(backend.asarray(mask), native=False)
    ii, jj = np.meshgrid(np.arange(9), np.arange(14), indexing="ij")
    assert_close(got, np.sqrt(ii**2 + jj**2)[None], rtol=tol(backend, got), atol=1e-5)


def test_distance_transform_bad_input(backend, rng):
    m = backend.asarray(random_mask(rng, (2, 5, 4)))
    with pytest.raises(ValueError, match=r"distance_transform: spatial_ndim must be 1, 2 or 3 \(or None .*\), got 4"):
        pl.distance_transform(m, spatial_ndim=4)
    with pytest.raises(ValueError, match=r"distance_transform: mask must have at least spatial_ndim=3 axes"):
        pl.distance_transform(backend.asarray(np.ones((4, 5), dtype=bool)), spatial_ndim=3)
    with pytest.raises(ValueError, match=r"distance_transform: sampling must be .* 2 positive numbers"):
        pl.distance_transform(m, sampling=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"distance_transform: sampling must be"):
        pl.distance_transform(m, sampling=-1.0)
    with pytest.raises(ValueError, match=r"distance_transform: mask must have non-empty spatial axes"):
        pl.distance_transform(backend.asarray(np.ones((2, 0, 3), dtype=bool)))
    with pytest.raises(TypeError, match="distance_transform: dtype must be a real floating dtype"):
        pl.distance_transform(m, dtype=backend.xp.int32)


# --------------------------------------------------------------------------- #
# signed_distance_map
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("shape", "nd", "sampling"), [((3, 8, 11), 2, None), ((2, 5, 4, 6), 3, (0.8, 1.0, 1.5)),
                                                         ((2, 2, 7, 9), 2, (2.0, 0.5))])
def test_signed_distance_map_matches_kervadec(backend, rng, shape, nd, sampling):
    mask = random_mask(rng, shape, share=0.4)
    flat = mask.reshape(-1, *shape[len(shape) - nd :])
    flat[0] = False  # no foreground: zeros
    flat[1] = True  # no background: -(diagonal - s_min)
    got = pl.signed_distance_map(backend.asarray(mask), spatial_ndim=nd, sampling=sampling)
    want = sdm_reference(mask, nd, sampling)
    assert_close(got, want, rtol=tol(backend, got), atol=1e-5)
    # negative inside, positive outside, zero exactly on the inner boundary
    fg = flat[2:]
    w = want.reshape(flat.shape)[2:]
    assert np.all(w[~fg] > 0) and np.all(w[fg] <= 0)


def test_signed_distance_map_zero_set_is_the_inner_boundary(backend):
    mask = np.zeros((1, 9, 10), dtype=bool)
    mask[0, 2:7, 3:9] = True
    got = to_numpy(pl.signed_distance_map(backend.asarray(mask), native=False))[0]
    inner = mask[0] & ~ndimage.binary_erosion(mask[0])  # foreground with a background 4-neighbour
    np.testing.assert_array_equal(got == 0, inner)


def test_signed_distance_map_bad_input(backend):
    with pytest.raises(ValueError, match=r"signed_distance_map: sampling must be"):
        pl.signed_distance_map(backend.asarray(np.ones((2, 3, 3), dtype=bool)), sampling=(1.0, 0.0))


# --------------------------------------------------------------------------- #
# unet_weight_map
# --------------------------------------------------------------------------- #


def random_instances(rng, shape, k):
    """Label maps with up to k rectangles (later ones overwrite), some ids absent (padding)."""
    labels = np.zeros(shape, dtype=np.int64)
    spatial = shape[-2:]
    for index in np.ndindex(*shape[:-2]):
        for i in range(1, k + 1):
            if rng.random() < 0.25:
                continue  # absent instance
            r0, c0 = rng.integers(0, spatial[0] - 2), rng.integers(0, spatial[1] - 2)
            h, w = rng.integers(1, 4), rng.integers(1, 4)
            labels[index][r0 : r0 + h, c0 : c0 + w] = i
    return labels


@pytest.mark.parametrize(("w0", "sigma", "class_weight"), [(10.0, 5.0, None), (3.0, 2.0, (0.5, 2.0))])
@pytest.mark.parametrize("k", [1, 4])
def test_unet_weight_map_matches_reference(backend, rng, w0, sigma, class_weight, k):
    labels = random_instances(rng, (3, 11, 13), k)
    labels[0] = 0  # all background
    got = pl.unet_weight_map(backend.asarray(labels), num_instances=k, w0=w0, sigma=sigma, class_weight=class_weight)
    assert tuple(got.shape) == labels.shape
    assert_close(got, unet_reference(labels, k, w0, sigma, class_weight, 2), rtol=tol(backend, got), atol=1e-6)


def test_unet_weight_map_feeds_binary_cross_entropy(backend, rng):
    labels = random_instances(rng, (2, 9, 8), 3)
    w = pl.unet_weight_map(backend.asarray(labels), num_instances=3, dtype=backend.xp.float64)
    x = rng.normal(size=(2, 1, 9, 8))
    t = (labels > 0)[:, None].astype(np.float64)
    got = pl.binary_cross_entropy(backend.asarray(x), backend.asarray(t), weight=w[:, None, ...])
    ce = np.logaddexp(0, x) - t * x
    assert_close(got, (ce * unet_reference(labels, 3, 10.0, 5.0, None, 2)[:, None]).mean(), rtol=1e-6)


def test_unet_weight_map_bad_input(backend, rng):
    labels = random_instances(rng, (2, 6, 7), 2)
    y = backend.asarray(labels)
    with pytest.raises(TypeError, match="unet_weight_map: instance_labels must have an integer dtype"):
        pl.unet_weight_map(backend.asarray(labels.astype(np.float64)), num_instances=2)
    with pytest.raises(ValueError, match="unet_weight_map: num_instances must be a non-negative int"):
        pl.unet_weight_map(y, num_instances=-1)
    with pytest.raises(ValueError, match="unet_weight_map: sigma must be > 0"):
        pl.unet_weight_map(y, num_instances=2, sigma=0.0)
    with pytest.raises(ValueError, match=r"unet_weight_map: class_weight must be \(w_background, w_foreground\)"):
        pl.unet_weight_map(y, num_instances=2, class_weight=(1.0, 2.0, 3.0))
    labels[0, 0, 0] = 5
    if backend.is_jax:  # lazy arrays: value checks are skipped, never a crash
        pl.unet_weight_map(backend.asarray(labels), num_instances=2)
        return
    with pytest.raises(ValueError, match=r"unet_weight_map: instance_labels must lie in \[0, 2\], found 5"):
        pl.unet_weight_map(backend.asarray(labels), num_instances=2)


# --------------------------------------------------------------------------- #
# Spatial axes: a volume is a volume (spatial_ndim=None infers them from the layout)
# --------------------------------------------------------------------------- #


def test_volumes_are_volumes_by_default(backend, rng):
    """(N, C, D, H, W) masks and (N, D, H, W) instance labels are read as 3-D volumes, against scipy in 3-D."""
    mask = random_mask(rng, (2, 2, 5, 6, 7), share=0.8)
    got = pl.distance_transform(backend.asarray(mask))
    assert_close(got, edt_reference(mask, 3), rtol=tol(backend, got), atol=1e-5)
    got = pl.signed_distance_map(backend.asarray(mask))
    assert_close(got, sdm_reference(mask, 3), rtol=tol(backend, got), atol=1e-5)
    labels = np.stack([random_instances(rng, (5, 9, 8), 3) for _ in range(2)])  # (N, D, H, W)
    got = pl.unet_weight_map(backend.asarray(labels), num_instances=3)
    assert_close(got, unet_reference(labels, 3, 10.0, 5.0, None, 3), rtol=tol(backend, got), atol=1e-6)


def test_batches_of_images_stay_images_and_volumes_stack_the_right_way(backend, rng):
    """(N, H, W) is a batch of 2-D images; a volume constant along D has the 2-D distances of its slice
    on every slice (the nearest zero lies in the same slice), and spatial_ndim=2 reads it slice by slice."""
    images = random_mask(rng, (3, 8, 9), share=0.8)
    got = pl.distance_transform(backend.asarray(images))
    assert_close(got, edt_reference(images, 2), rtol=tol(backend, got), atol=1e-5)
    volume = np.repeat(images[:, None], 4, axis=1)[:, None]  # (N, C=1, D=4, H, W), constant along D
    want = np.repeat(edt_reference(images, 2)[:, None], 4, axis=1)[:, None]
    got = pl.distance_transform(backend.asarray(volume))
    assert_close(got, want, rtol=tol(backend, got), atol=1e-5)
    labels = random_instances(rng, (3, 9, 8), 3)
    slices = pl.unet_weight_map(backend.asarray(labels[None]), num_instances=3, spatial_ndim=2)
    assert_close(slices, unet_reference(labels, 3, 10.0, 5.0, None, 2)[None], rtol=tol(backend, slices), atol=1e-6)


@pytest.mark.parametrize("name", ["distance_transform", "signed_distance_map"])
def test_ambiguous_layouts_ask_for_spatial_ndim(backend, rng, name):
    fn = getattr(pl, name)
    mask = backend.asarray(random_mask(rng, (2, 3, 5, 6)))
    with pytest.raises(ValueError, match=rf"{name}: mask of shape \(2, 3, 5, 6\) is ambiguous .*"
                                         r"\(N, D, H, W\) volumes or \(N, C, H, W\).*pass spatial_ndim=2 or"):
        fn(mask)
    assert tuple(fn(mask, spatial_ndim=3).shape) == (2, 3, 5, 6)
    with pytest.raises(ValueError, match=rf"{name}: mask of shape \(1, 2, 3, 4, 5, 6\) is ambiguous"):
        fn(backend.asarray(np.ones((1, 2, 3, 4, 5, 6), dtype=bool)))
    labels = backend.asarray(np.zeros((1, 1, 2, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"unet_weight_map: instance_labels of shape \(1, 1, 2, 3, 4\) is ambiguous"):
        pl.unet_weight_map(labels, num_instances=1)


# --------------------------------------------------------------------------- #
# torch.compile(fullgraph=True)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["distance_transform", "signed_distance_map", "unet_weight_map"])
def test_torch_compile_fullgraph_matches_eager(backend, rng, name):
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    if name == "unet_weight_map":
        x = backend.asarray(random_instances(rng, (2, 7, 9), 3))
        options = {"num_instances": 3}
    else:
        x = backend.asarray(random_mask(rng, (2, 7, 9)))
        options = {"sampling": (1.5, 1.0)}
    fn = getattr(pl, name)
    torch._dynamo.reset()
    compiled = torch.compile(lambda m: fn(m, **options), fullgraph=True, backend="aot_eager")
    assert_close(compiled(x), to_numpy(fn(x, **options)), rtol=1e-6)


def test_torch_cpu_tensors_take_the_scipy_kernel(backend, rng):
    """Eager torch CPU tensors go to SciPy (as NumPy arrays do); compiled graphs take the array-API path."""
    if not backend.is_torch:
        pytest.skip("the SciPy path serves eager torch CPU tensors")
    import array_api_compat
    import torch

    from polyloss._backend import distance_transform

    mask = random_mask(rng, (2, 9, 11))
    x = backend.asarray(mask)
    if x.device.type != "cpu":
        pytest.skip("the SciPy kernel serves CPU tensors only")
    got = distance_transform(x, sampling=(1.5, 1.0), dtype=torch.float64, xp=array_api_compat.array_namespace(x))
    assert got.dtype == torch.float64
    want = np.stack([ndimage.distance_transform_edt(m, sampling=(1.5, 1.0)) for m in mask])
    np.testing.assert_array_equal(to_numpy(got), want)  # the same kernel: bit for bit


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("dynamic", [None, True])
def test_torch_compile_after_a_shape_change_and_dynamic(backend, rng, native, dynamic):
    """fullgraph=True holds on a second shape (automatic dynamic shapes) and with dynamic=True: the host
    kernel is one custom-op node the tracer never calls, the array-API path traces with symbolic shapes."""
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    torch._dynamo.reset()
    compiled = torch.compile(lambda m: pl.distance_transform(m, sampling=(1.5, 1.0), native=native),
                             fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for shape in ((2, 7, 9), (3, 10, 6)):
        mask = random_mask(rng, shape)
        got = compiled(backend.asarray(mask))
        assert_close(got, edt_reference(mask, 2, (1.5, 1.0)), rtol=tol(backend, got), atol=1e-5)


@pytest.mark.parametrize("dynamic", [None, True])
def test_torch_compile_hausdorff_dt_loss_after_a_shape_change(backend, rng, dynamic):
    """hausdorff_dt_loss (a distance transform of the prediction in every call) compiles with fullgraph=True
    on two shapes; value and gradient equal eager."""
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    torch._dynamo.reset()
    compiled = torch.compile(lambda x, y: pl.hausdorff_dt_loss(x, y), fullgraph=True, dynamic=dynamic,
                             backend="aot_eager")
    for shape in ((2, 3, 7, 9), (3, 3, 10, 6)):
        x = backend.asarray(random_logits(rng, shape))
        y = backend.asarray(random_labels(rng, (shape[0], *shape[2:]), shape[1]))
        want = backend.value_and_grad(lambda z, y=y: pl.hausdorff_dt_loss(z, y), x)
        got = backend.value_and_grad(lambda z, y=y: compiled(z, y), x)
        assert_close(got[0], want[0], rtol=1e-6)
        assert_close(got[1], want[1], rtol=1e-6, atol=1e-9)


def test_docstring_examples_run(backend):
    """The Example of every public function runs with NumPy and prints what its docstring says."""
    if backend.name != "numpy":
        pytest.skip("the docstring examples are written for NumPy")
    import doctest

    import polyloss.segmentation.distance

    result = doctest.testmod(polyloss.segmentation.distance, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0
