"""No public function writes into the arrays it is given.

On the CPU, ``torchscope.backend.to_tensor``, ``torch.as_tensor`` and ``torch.from_numpy`` share
memory with a contiguous numpy input, so an in-place tensor operation (``mul_``, ``copy_``,
``out=``, slice assignment, ...) on such a tensor silently changes the caller's array. Every
test here passes ordinary contiguous, writeable CPU arrays (the inputs that are shared, not
copied), keeps an independent copy of each beforehand, and compares them bit for bit
afterwards. Arrays inside inputs such as ``PtychoData``, a ptychography ``Snapshot``/``Result``
given as ``start=`` (its ``state`` included) or an alzheimer ``Split`` are checked too.

Everything is tiny: the module runs in a few seconds on one CPU thread.
"""

import contextlib
import dataclasses

import numpy as np
import pytest

import torchscope.filters as F
from torchscope import alzheimer as az
from torchscope import deblur, ghost, ptycho

REAL = [np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Torch on one thread (see tests/conftest.py): these are many tiny calls."""


# ----------------------------------------------------------------------------------- helpers
def _arrays(value, path):
    """``(path, array)`` for every numpy array in ``value``, searched through dataclasses,
    dicts, lists and tuples."""
    if isinstance(value, np.ndarray):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _arrays(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _arrays(item, f"{path}[{i}]")


def _record(**inputs):
    """Independent copies of every array in ``inputs``: ``[(path, array, copy), ...]``."""
    records = [(path, a, a.copy()) for name, value in inputs.items()
               for path, a in _arrays(value, name)]
    assert records, "nothing to check"
    for path, a, c in records:
        assert not np.shares_memory(a, c), path
    return records


def _check(records):
    """Assert that each recorded array is bit-for-bit equal to its copy."""
    changed = []
    for path, a, c in records:
        if a.shape != c.shape or a.dtype != c.dtype or a.tobytes() != c.tobytes():
            diff = np.count_nonzero(a != c) if a.shape == c.shape else "all"
            changed.append(f"{path} ({diff} of {c.size} elements)")
    assert not changed, "input arrays modified: " + ", ".join(changed)


@contextlib.contextmanager
def unchanged(**inputs):
    """Assert that every array in ``inputs`` is bit-for-bit the same after the block."""
    records = _record(**inputs)
    yield
    _check(records)


def _image(dtype, shape=(24, 24), seed=0):
    """A contiguous, writeable test image in [0, 1] with some structure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / max(shape)
    smooth = 0.5 + 0.3 * np.sin(7 * yy) * np.cos(5 * xx)
    a = np.clip(smooth + 0.1 * rng.standard_normal(shape), 0, 1).astype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    return a


# ----------------------------------------------------------------------------------- filters
FILTERS = {
    "gaussian": lambda x: F.gaussian(x, 1.5),
    "gaussian_constant": lambda x: F.gaussian(x, 1.5, mode="constant"),
    "difference_of_gaussians": lambda x: F.difference_of_gaussians(x, 1.0, 2.0),
    "laplace": lambda x: F.laplace(x),
    "laplacian_of_gaussian": lambda x: F.laplacian_of_gaussian(x, 1.0),
    "sobel": lambda x: F.sobel(x),
    "sobel_axis": lambda x: F.sobel(x, axis=0),
    "mean": lambda x: F.mean(x, 2),
    "median": lambda x: F.median(x, 2),
    "median_wrap": lambda x: F.median(x, 2, mode="wrap"),
    "minimum": lambda x: F.minimum(x, 2),
    "minimum_identity": lambda x: F.minimum(x, 0),
    "maximum": lambda x: F.maximum(x, 2),
    "variance": lambda x: F.variance(x, 2),
    "variance_constant": lambda x: F.variance(x, 2, mode="constant"),
    "std": lambda x: F.std(x, 2),
    "erosion": lambda x: F.erosion(x, 2),
    "dilation": lambda x: F.dilation(x, 2),
    "opening": lambda x: F.opening(x, 2),
    "closing": lambda x: F.closing(x, 2),
    "white_tophat": lambda x: F.white_tophat(x, 2),
    "black_tophat": lambda x: F.black_tophat(x, 2),
    "histogram": lambda x: F.histogram(x, 16),
    **{f"threshold_{m}": (lambda x, m=m: F.threshold(x, m)) for m in F.THRESHOLD_METHODS},
    **{f"threshold_value_{m}": (lambda x, m=m: F.threshold_value(x, m))
       for m in F.THRESHOLD_METHODS},
    "threshold_number": lambda x: F.threshold(x, 0.5),
}


@pytest.mark.parametrize("dtype", REAL + [np.uint8])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters(name, dtype):
    image = _image(np.float64) * (255 if dtype == np.uint8 else 1)
    image = image.astype(dtype)
    with unchanged(image=image):
        FILTERS[name](image)


@pytest.mark.parametrize("name", ["gaussian", "median", "erosion", "white_tophat", "sobel"])
def test_filters_3d(name):
    image = np.stack([_image(np.float32, (12, 12), seed=s) for s in range(5)])
    with unchanged(image=image):
        FILTERS[name](image)


# ------------------------------------------------------------------------------------- ghost
def _ghost_problem(dtype, n=32, ratio=0.1875):
    patterns = ghost.hadamard_patterns(n, ratio=ratio).astype(dtype)  # zigzag: a shipped mwcnn
    obj = _image(dtype, (n, n))
    buckets = ghost.simulate_buckets(obj, patterns, modulation_depth=0.8, photons=1000, rng=0)
    return obj, patterns, buckets.astype(dtype)


@pytest.mark.parametrize("dtype", REAL)
def test_ghost_simulate_buckets(dtype):
    obj, patterns, _ = _ghost_problem(dtype)
    stack = np.stack([obj, obj[::-1].copy()])
    with unchanged(obj=obj, stack=stack, patterns=patterns):
        ghost.simulate_buckets(obj, patterns, modulation_depth=0.8, mask_error=0.03, blur=0.5,
                               photons=1000, read_noise=1.0, rng=0)
        ghost.simulate_buckets(stack, patterns)
    differential = ghost.hadamard_patterns(16, ratio=0.5, kind="differential").astype(dtype)
    small = _image(dtype, (16, 16))
    with unchanged(obj=small, patterns=differential):
        ghost.simulate_buckets(small, differential, mask_error=0.03, rng=0)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("method", ghost.METHODS)
def test_ghost_reconstruct(method, dtype):
    _, patterns, buckets = _ghost_problem(dtype)
    stack = np.stack([buckets, 2 * buckets])
    options = {"iterations": 10} if method == "tv" else {}
    with unchanged(buckets=buckets, stack=stack, patterns=patterns):
        ghost.reconstruct(buckets, patterns, method=method, modulation_depth=0.8, **options)
        ghost.reconstruct(stack, patterns, method=method, modulation_depth="estimate",
                          **options)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("method", ["pinv", "tv"])
def test_ghost_reconstruct_general_patterns(method, dtype):
    # speckle masks and basis="general": the SVD frame instead of the Walsh-Hadamard one
    patterns = ghost.speckle_patterns(16, 100, grain=2, rng=1).astype(dtype)
    buckets = ghost.simulate_buckets(_image(dtype, (16, 16)), patterns).astype(dtype)
    hadamard = ghost.hadamard_patterns(16, ratio=0.3).astype(dtype)
    b_hadamard = ghost.simulate_buckets(_image(dtype, (16, 16)), hadamard).astype(dtype)
    options = {"iterations": 10} if method == "tv" else {}
    with unchanged(buckets=buckets, patterns=patterns, hadamard=hadamard, b_hadamard=b_hadamard):
        ghost.reconstruct(buckets, patterns, method=method, **options)
        ghost.reconstruct(b_hadamard, hadamard, method=method, basis="general",
                          modulation_depth=0.9, **options)


@pytest.mark.parametrize("dtype", REAL)
def test_ghost_iterate_and_metrics(dtype):
    obj, patterns, buckets = _ghost_problem(dtype)
    mask = obj > 0.5
    with unchanged(buckets=buckets, patterns=patterns):
        snaps = list(ghost.iterate(buckets, patterns, every=3, iterations=9))
        ghost.estimate_modulation_depth(buckets, patterns)
    image = snaps[-1].image
    with unchanged(image=image, mask=mask):
        ghost.cnr(image, mask)
        ghost.cnr(image, mask, background_mask=~mask)


@pytest.mark.parametrize("dtype", REAL)
def test_ghost_snapshots_are_not_overwritten_by_later_iterations(dtype):
    _, patterns, buckets = _ghost_problem(dtype)
    records = [_record(**{f"snapshot_{snap.iteration}": snap})
               for snap in ghost.iterate(buckets, patterns, every=2, iterations=8)]
    for r in records:
        _check(r)


@pytest.mark.parametrize("dtype", REAL)  # float32 computes in float32: no cast, no copy
def test_ghost_snapshot_images_are_not_the_solvers_state(dtype):
    _, patterns, buckets = _ghost_problem(dtype)
    reference = [s.image.copy() for s in ghost.iterate(buckets, patterns, every=2, iterations=6)]
    seen = []
    for snap in ghost.iterate(buckets, patterns, every=2, iterations=6):
        seen.append(snap.image.copy())
        snap.image[...] = 0  # a caller editing its own result
    for got, want in zip(seen, reference):
        assert got.tobytes() == want.tobytes()


# ------------------------------------------------------------------------------------ ptycho
def _ptycho_problem(dtype, modes=1):
    """A 48 x 48 complex object, a 16 x 16 probe, 16 sub-pixel positions."""
    yy, xx = np.mgrid[:48, :48] / 48
    obj = ((0.7 + 0.3 * np.cos(5 * yy) * np.sin(3 * xx))
           * np.exp(1j * np.sin(4 * xx + 2 * yy))).astype(dtype)
    probe = ptycho.make_probe(16, diameter_px=9, edge_px=2, quadratic_phase_rad=1.0,
                              modes=modes).astype(dtype)
    positions = ptycho.raster_positions(4, 4.0, jitter_px=0.7, rng=1)
    assert positions.dtype == np.float64 and positions.flags.c_contiguous
    return obj, probe, positions


@pytest.mark.parametrize("dtype", COMPLEX)
def test_ptycho_simulate(dtype):
    obj, probe, positions = _ptycho_problem(dtype)
    with unchanged(obj=obj, probe=probe, positions=positions):
        ptycho.simulate(obj, probe, positions)
        ptycho.simulate(obj, probe, positions, photons=1e4, rng=0)
        ptycho.lit_region(probe, positions, obj.shape)
    amplitude = np.abs(obj).astype(np.float32 if dtype == np.complex64 else np.float64)
    with unchanged(amplitude=amplitude):
        ptycho.simulate(amplitude, probe, positions)


def _data(dtype, modes=1, mask=False):
    obj, probe, positions = _ptycho_problem(dtype, modes)
    data = ptycho.simulate(obj, probe, positions, photons=1e5, rng=0)
    if mask:
        valid = np.ones(data.patterns.shape[1:], bool)
        valid[0, :] = False
        data = dataclasses.replace(data, mask=valid)
    return data, obj, probe


RUNS = {
    "fixed_batches": {"batch_size": 4},
    "sequential": {"batch_size": 1, "engine": "epie"},
    "auto_momentum_adam": {"position_refinement": "adam", "refine_start": 0, "seed": 0},
    "fixed_gain": {"position_refinement": "fixed_gain", "refine_start": 0, "batch_size": 4,
                   "seed": 0},
}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("modes", [1, 2])
@pytest.mark.parametrize("run", sorted(RUNS))
def test_ptycho_reconstruct_with_probe_obj_and_start(run, modes, dtype):
    data, obj, probe = _data(dtype, modes, mask=run == "fixed_batches")
    start_obj = (0.9 * obj).astype(dtype)
    start_probe = (1.1 * probe).astype(dtype)
    options = dict(RUNS[run], modes=modes)
    with unchanged(data=data, obj=start_obj, probe=start_probe):
        first = ptycho.reconstruct(data, iterations=3, probe=start_probe, obj=start_obj,
                                   **options)
    # a continuation reads the object, probe, positions and engine state of the result
    with unchanged(data=data, start=first):
        again = ptycho.reconstruct(data, iterations=2, start=first, **options)
        ptycho.reconstruct(data, iterations=2, start=first, **options)
        ptycho.reconstruct(data, iterations=2, start=again, **options)
    with unchanged(data=data, obj=start_obj, probe=start_probe, start=first):
        snaps = list(ptycho.iterate(data, iterations=2, probe=start_probe, obj=start_obj,
                                    **options))
        list(ptycho.iterate(data, iterations=2, start=snaps[0], **options))
        list(ptycho.iterate(data, iterations=2, start=first, **options))


def test_ptycho_snapshots_are_not_overwritten_by_later_iterations():
    data, _, _ = _data(np.complex64)
    records = [_record(**{f"snapshot_{snap.iteration}": snap})  # copies at yield time
               for snap in ptycho.iterate(data, iterations=4, position_refinement="adam",
                                          refine_start=0, seed=0)]
    for r in records:
        _check(r)


@pytest.mark.parametrize("dtype", REAL + COMPLEX)
def test_register_subpixel(dtype):
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((3, 20, 20))
    if np.dtype(dtype).kind == "c":
        reference = reference + 1j * rng.standard_normal((3, 20, 20))
    reference = reference.astype(dtype)
    moving = np.roll(reference, (1, -2), axis=(-2, -1)).copy()
    one = reference[0].copy()
    with unchanged(reference=reference, moving=moving, one=one):
        ptycho.register_subpixel(reference, moving, upsample=10)
        ptycho.register_subpixel(one, moving, upsample=10, normalization=None)
        ptycho.register_subpixel(reference, moving, upsample=1, space="fourier")


@pytest.mark.parametrize("dtype", COMPLEX)
def test_object_error(dtype):
    obj, probe, positions = _ptycho_problem(dtype)
    reconstructed = (np.exp(0.3j) * np.roll(obj, 1, axis=1)).astype(dtype)
    smaller = reconstructed[4:-4, 4:-4].copy()
    roi = ptycho.lit_region(probe, positions, obj.shape)
    with unchanged(reconstructed=reconstructed, truth=obj, roi=roi, smaller=smaller):
        ptycho.object_error(reconstructed, obj, roi, upsample=10)
        ptycho.object_error(smaller, obj, upsample=10)


# ------------------------------------------------------------------------------------ deblur
def _kernel(dtype, size=7):
    return deblur.motion_kernel(size, rng=0).astype(dtype)


def _blurred(dtype, shape=(64, 64)):
    sharp = _image(np.float64, shape)
    return deblur.blur(sharp, _kernel(np.float64), mode="reflect").astype(dtype)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("mode", deblur.BLUR_MODES)
def test_deblur_blur(mode, dtype):
    image = _image(dtype, (32, 32))
    colour = np.stack([image, image[::-1], image.T], axis=-1)  # a fresh contiguous array
    kernel = _kernel(dtype)
    with unchanged(image=image, colour=colour, kernel=kernel):
        deblur.blur(image, kernel, mode=mode)
        deblur.blur(image, kernel, mode=mode, noise_sigma=0.01, rng=0)
        deblur.blur(colour, kernel, mode=mode)


@pytest.mark.parametrize("dtype", REAL)
def test_deblur_metrics(dtype):
    k1, k2 = _kernel(dtype), deblur.motion_kernel(9, rng=1).astype(dtype)
    stack = np.stack([k1, k1[::-1]])
    sharp = _image(dtype, (32, 32))
    restored = _image(dtype, (32, 32), seed=1)
    restored_true = _image(dtype, (32, 32), seed=2)
    with unchanged(k1=k1, k2=k2, stack=stack):
        deblur.kernel_similarity(k1, k2)
        deblur.kernel_similarity(stack, k1)
    with unchanged(restored=restored, restored_true=restored_true, sharp=sharp):
        deblur.error_ratio(restored, restored_true, sharp, max_shift=3)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("method", deblur.METHODS)
def test_deblur_estimate_kernel(method, dtype):
    image = _blurred(dtype)
    patches = np.stack([image[:32, :32], image[32:, 32:]])
    bright = image * 3 + 1  # beyond [-0.5, 1.5]: mapped from its [min, max]
    with unchanged(image=image, patches=patches, bright=bright):
        deblur.estimate_kernel(image, 7, method=method, iterations=1)
        deblur.estimate_kernel(patches, 7, method=method, iterations=1)
        deblur.estimate_kernel(bright, 7, method=method, iterations=1)
        list(deblur.iterate(image, 7, method=method, iterations=1))


def test_deblur_snapshots_are_not_overwritten_by_later_iterations():
    records = [_record(**{f"snapshot_{snap.level}_{snap.iteration}": snap})
               for snap in deblur.iterate(_blurred(np.float32), 7, iterations=2)]
    for r in records:
        _check(r)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("method", deblur.DECONVOLUTION_METHODS)
def test_deblur_deconvolve(method, dtype):
    image = _blurred(dtype)
    colour = np.stack([image, image.T, image[::-1]], axis=-1)
    bright = image * 3 + 1
    kernel = _kernel(dtype)
    unnormalised = kernel * 3  # normalised inside
    with unchanged(image=image, colour=colour, bright=bright, kernel=kernel,
                   unnormalised=unnormalised):
        deblur.deconvolve(image, kernel, method=method)
        deblur.deconvolve(colour, kernel, method=method)
        deblur.deconvolve(bright, unnormalised, method=method)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("scorer", ["variance", "edges", "random"])
def test_deblur_score_regions(scorer, dtype):
    image = _blurred(dtype)
    colour = np.stack([image, image.T, image[::-1]], axis=-1)
    rng = {"rng": 0} if scorer == "random" else {}
    with unchanged(image=image, colour=colour):
        deblur.score_regions(image, size=32, stride=16, scorer=scorer, **rng)
        deblur.score_regions(colour, size=32, stride=16, scorer=scorer, **rng)


@pytest.mark.parametrize("dtype", REAL)
def test_deblur_pipeline(dtype):
    image = _blurred(dtype)
    with unchanged(image=image):
        deblur.deblur(image, 7, scorer="variance", size=32, deconvolution="wiener")
        deblur.deblur(image, 7, region=(0, 0, 48, 48), deconvolution="richardson_lucy")


# --------------------------------------------------------------------------------- alzheimer
def _cohort(n=12, shape=(32, 40), seed=0):
    """A tiny synthetic cohort (random slices: only the arrays' fate matters here)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return az.Cohort(
        ids=np.array([f"OAS1_{i + 1:04d}_MR1" for i in range(n)]),
        subjects=np.array([f"OAS1_{i + 1:04d}" for i in range(n)]),
        slices=rng.random((n, *shape)).astype(np.float32),
        labels=labels.astype(np.int64), cdr=labels * 0.5, age=rng.uniform(60, 90, n),
        sex=np.array(["F", "M"] * (n // 2)),
        clinical={"nWBV": 0.8 - 0.05 * labels + 0.01 * rng.standard_normal(n)},
    )


@pytest.fixture(scope="module")
def tiny_split():
    return az.subject_split(_cohort(), test=0.25, val=0.25, seed=0)


@pytest.fixture(scope="module")
def trained(tiny_split):
    """A model trained for one epoch per stage, and the split's arrays as they were before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        records = _record(split=tiny_split)  # training reads the slices through from_numpy
        model = az.train(tiny_split, epochs_ae=1, epochs_clf=1, epochs_finetune=1,
                         batch_size=4, seed=0, device="cpu")
        return model, records
    finally:
        torch.set_num_threads(before)


def test_alzheimer_train(trained):
    _check(trained[1])


def test_alzheimer_evaluate(trained, tiny_split):
    with unchanged(split=tiny_split):
        az.evaluate(trained[0], tiny_split.test)


@pytest.mark.parametrize("dtype", REAL)
def test_alzheimer_inference(trained, dtype):
    model = trained[0]
    slices = np.random.default_rng(1).random((3, 32, 40)).astype(dtype)
    one = slices[0].copy()
    with unchanged(slices=slices, one=one):
        az.predict(model, slices)
        az.predict(model, one)
        az.reconstruct(model, slices)
        az.feature_maps(model, one)
        az.feature_maps(model, one, network="classifier")
        az.occlusion_map(model, one, patch=16, stride=8)
        az.occlusion_map(model, one, patch=16, stride=16, fill=0.0, units="logit")


@pytest.mark.parametrize("dtype", REAL + [np.int16])
def test_alzheimer_slices(dtype):
    volume = (np.random.default_rng(2).random((12, 14, 10)) * 1000).astype(dtype)
    trailing = volume[..., None].copy()  # (X, Y, Z, 1), as Analyze files load
    image = volume[:, :, 3].copy()
    with unchanged(volume=volume, trailing=trailing, image=image):
        az.extract_slice(volume, axis=2, index=3)
        az.extract_slice(trailing, axis=0, index=-1)
        az.normalise_slice(image)
