"""Training the MWCNN of ``method="mwcnn"``: synthetic objects, simulated measurements, Adam.

Training pairs are made on the fly: an object (a transmission map in [0, 1]) is measured by
:func:`~torchscope.ghost.simulate_buckets` through a pattern set with random mask flaws
(modulation depth, per-pixel transmission error, edge blur) and a random Poisson dose, the
pseudo-inverse image is computed by the same plan/frame machinery as ``method="pinv"``, and the
network learns to map it to the object (both normalised by the pseudo-inverse's mean and
standard deviation, see :func:`torchscope.ghost._mwcnn.normalise`).

Objects come from offline sources only:

- crops of scikit-image's bundled photographs (:data:`TRAINING_SOURCES`; never the
  :data:`HELD_OUT_SOURCES`, which are kept for evaluation), at random scales, flips, rotations,
  contrasts and gammas;
- generated images: dead leaves (random overlapping discs), 1/f^beta random fields;
- binary objects: random ellipses, polygons, bars, rings and gaps, and letters of the
  alphabet without C, A and S (:data:`HELD_OUT_LETTERS`, the paper's "CAS" sample).

Everything is seeded: the same ``seed`` gives the same objects, measurements and weights on
the same device and thread count.
"""

import functools
import math
import numbers
import typing

import numpy as np

from torchscope.backend import check_rng

#: scikit-image bundled images (no download) used for training.
TRAINING_SOURCES = ("astronaut", "brick", "cat", "cell", "chelsea", "coffee", "grass", "gravel",
                    "hubble_deep_field", "immunohistochemistry", "microaneurysms", "page",
                    "retina", "rocket", "stereo_motorcycle", "text")
#: scikit-image bundled images never used for training (evaluation and figures only).
HELD_OUT_SOURCES = ("camera", "moon", "coins", "clock", "horse", "shepp_logan_phantom")
#: Letters never drawn in training (the paper's stencilled "CAS" sample).
HELD_OUT_LETTERS = "CAS"
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" if c not in HELD_OUT_LETTERS)
#: Share of each kind of object in a training batch.
MIX = {"natural": 0.40, "dead_leaves": 0.12, "power_law": 0.08, "shapes": 0.25, "letters": 0.15}


class TrainingProgress(typing.NamedTuple):
    """What :func:`train_mwcnn` yields after each optimisation step.

    Attributes
    ----------
    step : int
        Steps done (1 to ``steps``).
    steps : int
        Steps asked for.
    loss : float
        Mean absolute error of this step's batch, in units of the standard deviation of the
        pseudo-inverse images.
    model : MWCNN
        The model being trained (the same object at every step; keep it to stop early).
    """

    step: int
    steps: int
    loss: float
    model: typing.Any


# ------------------------------------------------------------------------------ objects
def _gray(img):
    img = np.asarray(img)
    if isinstance(img, tuple):
        img = img[0]
    img = img.astype(np.float64)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    lo, hi = np.percentile(img, (0.5, 99.5))
    return np.clip((img - lo) / max(hi - lo, 1e-9), 0, 1)


@functools.lru_cache(maxsize=1)
def _natural_pool():
    """Training photographs as pyramids (scales 1, 1/2, 1/4) of float32 gray images."""
    from skimage import data
    from skimage.transform import rescale

    pool = []
    for name in TRAINING_SOURCES:
        img = getattr(data, name)()
        img = _gray(img[0] if isinstance(img, tuple) else img)
        for scale in (1.0, 0.5, 0.25):
            im = img if scale == 1 else rescale(img, scale, anti_aliasing=True)
            if min(im.shape) >= 72:
                pool.append(im.astype(np.float32))
    return tuple(pool)


def _natural(gen, n):
    pool = _natural_pool()
    img = pool[gen.integers(len(pool))]
    i, j = gen.integers(0, img.shape[0] - n + 1), gen.integers(0, img.shape[1] - n + 1)
    crop = img[i:i + n, j:j + n].astype(np.float64)
    crop = np.rot90(crop, gen.integers(4))
    if gen.random() < 0.5:
        crop = crop[:, ::-1]
    crop = crop ** math.exp(gen.uniform(-0.5, 0.5))  # gamma
    lo, hi = crop.min(), crop.max()
    return (crop - lo) / max(hi - lo, 1e-6)


def _grid(m):
    c = (np.arange(m) + 0.5) / m
    return np.meshgrid(c, c, indexing="ij")


def _window(centre, radius, m, clip=True):
    """Index range of the pixels of an ``m``-pixel axis (centres at ``(i + 0.5) / m``) within
    ``radius`` of ``centre``, with a pixel to spare: ``slice`` (possibly empty). ``clip=False``:
    the whole axis (what the window stands in for)."""
    if not clip:
        return slice(0, m)
    lo = max(math.floor((centre - radius) * m - 0.5) - 1, 0)
    hi = min(math.ceil((centre + radius) * m - 0.5) + 2, m)
    return slice(lo, max(lo, hi))


def _dead_leaves(gen, n, ss=2, clip=True):
    m = n * ss
    yy, xx = _grid(m)
    img = np.full((m, m), gen.random())
    rmin, rmax = 1.0 / n, 0.5
    for _ in range(int(gen.integers(40, 200))):
        r = rmin / (1 - gen.random() * (1 - (rmin / rmax) ** 2)) ** 0.5  # ~ 1/r^3 sizes
        cy, cx = gen.uniform(-0.1, 1.1, 2)
        # each disc is drawn only in its bounding square (most are small): the same pixels
        win = (_window(cy, r, m, clip), _window(cx, r, m, clip))
        img[win][(yy[win] - cy) ** 2 + (xx[win] - cx) ** 2 < r * r] = gen.random()
    return img.reshape(n, ss, n, ss).mean((1, 3))


def _power_law(gen, n):
    beta = gen.uniform(1.6, 3.0)
    f = np.fft.fftfreq(n)
    k = np.hypot(f[:, None], f[None, :])
    k[0, 0] = 1.0
    spec = (gen.standard_normal((n, n)) + 1j * gen.standard_normal((n, n))) / k ** (beta / 2)
    img = np.fft.ifft2(spec).real
    return (img - img.min()) / max(np.ptp(img), 1e-12)


def _shape_mask(gen, yy, xx, clip=True):
    """One random binary shape on the supersampled grid ``yy, xx`` (in [0, 1]): the mask
    inside the window that holds it, and that window (a pair of slices)."""
    kind = gen.integers(5)
    cy, cx = gen.uniform(0.15, 0.85, 2)
    th = gen.uniform(0, np.pi)
    a, b = gen.uniform(0.04, 0.35, 2)
    # the shape's parameters, then the largest distance from (cy, cx) it reaches: it is
    # computed only in the square around it (the same pixels as on the whole grid)
    if kind == 0:  # ellipse
        reach = max(a, b)
    elif kind == 1:  # rectangle / bar
        width = b * gen.uniform(0.1, 1)
        reach = math.hypot(a, width)
    elif kind == 2:  # ring
        inner = a * gen.uniform(0.3, 0.85)
        reach = a
    elif kind == 3:  # star-shaped polygon in polar form (teeth, lobes)
        lobes = int(gen.integers(3, 12))
        teeth = gen.uniform(0.1, 0.5)
        on = gen.choice([0, 1])
        wave = gen.uniform(0, 0.3)
        reach = a * (1 + teeth * on + wave)
    else:  # two blocks with a narrow gap
        gap = gen.uniform(0.01, 0.06)
        reach = math.hypot(a + gap, b)
    m = yy.shape[0]
    win = (_window(cy, reach, m, clip), _window(cx, reach, m, clip))
    y, x = yy[win], xx[win]
    u = (y - cy) * np.cos(th) + (x - cx) * np.sin(th)
    v = -(y - cy) * np.sin(th) + (x - cx) * np.cos(th)
    if kind == 0:
        return (u / a) ** 2 + (v / b) ** 2 < 1, win
    if kind == 1:
        return (np.abs(u) < a) & (np.abs(v) < width), win
    if kind == 2:
        r = np.hypot(u, v)
        return (r < a) & (r > inner), win
    if kind == 3:
        r = np.hypot(u, v)
        phi = np.arctan2(v, u)
        edge = a * (1 + teeth * np.sign(np.sin(lobes * phi)) * on + wave * np.cos(lobes * phi))
        return r < edge, win
    return (np.abs(v) < b) & (np.abs(u) < a + gap) & (np.abs(u) > gap / 2), win


def _shapes(gen, n, ss=4, clip=True):
    m = n * ss
    yy, xx = _grid(m)
    obj = np.zeros((m, m), dtype=bool)
    for _ in range(int(gen.integers(1, 6))):
        s, win = _shape_mask(gen, yy, xx, clip)
        obj[win] = obj[win] ^ s if gen.random() < 0.2 else obj[win] | s
    return obj.reshape(n, ss, n, ss).mean((1, 3))


def _letters(gen, n, ss=4):
    from PIL import Image, ImageDraw, ImageFont

    m = n * ss
    img = Image.new("L", (m, m), 0)
    draw = ImageDraw.Draw(img)
    count = int(gen.integers(1, 4))
    size = max(int(m * gen.uniform(0.35, 1.0) / count ** 0.8), 3 * ss)
    font = ImageFont.load_default(size=size)
    text = "".join(LETTERS[i] for i in gen.integers(len(LETTERS), size=count))
    box = draw.textbbox((0, 0), text, font=font, stroke_width=0)
    w, h = box[2] - box[0], box[3] - box[1]
    x0 = gen.uniform(-box[0], max(-box[0] + 1, m - w - box[0]))
    y0 = gen.uniform(-box[1], max(-box[1] + 1, m - h - box[1]))
    draw.text((x0, y0), text, fill=255, font=font,
              stroke_width=int(gen.integers(0, 1 + size // 12)), stroke_fill=255)
    img = img.rotate(gen.uniform(-30, 30), resample=Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float64) / 255.0
    return (arr > 0.5).reshape(n, ss, n, ss).mean((1, 3))


_MAKERS = {"natural": _natural, "dead_leaves": _dead_leaves, "power_law": _power_law,
           "shapes": _shapes, "letters": _letters}


def synthetic_objects(n, count, *, rng=None, mix=None):
    """Random training objects: transmission maps in [0, 1].

    Parameters
    ----------
    n : int
        Side in pixels.
    count : int
        Number of objects.
    rng : None, int or numpy.random.Generator
    mix : dict, optional
        Relative share of each kind (keys of :data:`MIX`); default :data:`MIX`.

    Returns
    -------
    numpy.ndarray of float64, shape (count, n, n)
    """
    import scipy.ndimage as ndi

    gen = check_rng(rng)
    mix = dict(MIX if mix is None else mix)
    unknown = set(mix) - set(_MAKERS)
    if unknown:
        raise ValueError(f"mix has unknown kinds {sorted(unknown)}; accepted: {sorted(_MAKERS)}.")
    kinds = list(mix)
    prob = np.array([mix[k] for k in kinds], dtype=np.float64)
    if not (prob >= 0).all() or not prob.sum() > 0:
        raise ValueError(f"mix={mix!r}: expected non-negative shares with a positive sum.")
    prob /= prob.sum()
    out = np.empty((count, n, n))
    for i, kind in enumerate(gen.choice(len(kinds), size=count, p=prob)):
        img = _MAKERS[kinds[kind]](gen, n)
        binary = kinds[kind] in ("shapes", "letters")
        if binary and gen.random() < 0.5:  # soft edges of thick metal
            img = ndi.gaussian_filter(img, gen.uniform(0.3, 1.0), mode="nearest")
        if gen.random() < 0.5:
            img = 1.0 - img
        # transmission levels: e.g. an open stencil in steel, or a faint absorber
        lo = gen.uniform(0.0, 0.5) if gen.random() < 0.7 else 0.0
        hi = gen.uniform(max(lo + 0.25, 0.6), 1.0)
        out[i] = lo + (hi - lo) * img
    return out


# ------------------------------------------------------------------------- evaluation
def held_out_images(n):
    """Evaluation objects never used in training, ``{name: (n, n) float64 in [0, 1]}``.

    Natural: crops and whole-image reductions of scikit-image's ``camera``, ``moon``, ``coins``
    and ``clock``. The benchmark's camera crop (rows 80-143, columns 200-263 of the full image,
    reduced by ``64 / n``) is ``"camera_crop"``. Binary (names starting ``"binary_"``): the
    ``horse`` silhouette and a thresholded Shepp-Logan phantom.
    """
    from skimage import data
    from skimage.transform import resize

    def fit(img, shape=(n, n)):
        return np.clip(resize(img, shape, anti_aliasing=True, order=1), 0, 1)

    cam = data.camera() / 255.0
    out = {"camera_crop": fit(cam[80:144, 200:264]),
           "camera_face": fit(cam[60:188, 180:308]),
           "camera_whole": fit(cam)}
    moon, coins, clock = _gray(data.moon()), _gray(data.coins()), _gray(data.clock())
    out["moon_crop"] = fit(moon[200:328, 200:328])
    out["moon_whole"] = fit(moon)
    out["coins_crop"] = fit(coins[:128, :128])
    out["coins_whole"] = fit(coins[:, 40:343])
    out["clock_whole"] = fit(clock[:, 50:350])
    horse = ~data.horse()
    out["binary_horse"] = (fit(horse[:, 36:364].astype(float)) > 0.5).astype(float)
    phantom = data.shepp_logan_phantom()
    out["binary_phantom"] = (fit(phantom) > 0.15).astype(float)
    return out


# ------------------------------------------------------------------------------ training
def _range(name, value, low, high):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r}: expected a number or a (low, high) pair.") from None
    if not low <= a <= b <= high:
        raise ValueError(f"{name}={value!r}: expected low <= high within [{low}, {high}].")
    return a, b


def _pattern_sets(patterns):
    from torchscope.ghost._reconstruct import _check_pattern_array

    if isinstance(patterns, np.ndarray) or (hasattr(patterns, "shape")
                                             and not isinstance(patterns, (list, tuple))):
        sets = [patterns]
    else:
        sets = list(patterns)
        if not sets:
            raise ValueError("patterns is empty; expected an (M, n, n) array or a list of them.")
    out = []
    for p in sets:
        p = _check_pattern_array(p)
        if p.shape[1] != p.shape[2]:
            raise ValueError(f"patterns of shape {p.shape}: train_mwcnn needs square masks.")
        out.append(np.ascontiguousarray(p))
    return out


def _describe(p, plan):
    """``(order or None, ratio)`` of a pattern set: the Hadamard order it is a prefix of."""
    from torchscope.ghost._mwcnn import _fits
    from torchscope.ghost._patterns import ORDERS

    n = p.shape[1]
    if plan.hadamard is None:
        return None, p.shape[0] / plan.size
    rows = np.unique(plan.hadamard[0])
    for order in ORDERS:
        if _fits({"sizes": [n], "orders": [order]}, n, rows):
            return order, len(rows) / plan.size
    return None, len(rows) / plan.size


def _measure(p, options, seed, count):
    """One group of training measurements, in numpy (what a worker process makes).

    Draws ``count`` objects and one physical mask set's flaws, simulates the buckets through
    the nominal masks ``p`` and a Poisson dose per object. Returns ``(buckets, target, depth)``:
    buckets (count, M) and the objects scaled by their dose (count, n, n), both float32, and
    the modulation depth the pseudo-inverse is told.
    """
    from torchscope.ghost._simulate import simulate_buckets

    gen = np.random.default_rng(seed)
    n = p.shape[1]
    obj = synthetic_objects(n, count, rng=gen, mix=options["mix"])
    perfect = gen.random() < options["perfect_fraction"]
    depth = 1.0 if perfect else gen.uniform(*options["modulation_depth"])
    error = 0.0 if perfect else gen.uniform(*options["mask_error"])
    blur = 0.0 if perfect or gen.random() < 0.5 else gen.uniform(*options["blur"])
    # one physical mask set (its flaws) per group; a dose per object
    b = simulate_buckets(obj, p, modulation_depth=depth, mask_error=error, blur=blur, rng=gen)
    lo, hi = np.log(options["photons"][0]), np.log(options["photons"][1])
    photons = np.exp(gen.uniform(lo, hi, count))
    photons[gen.random(count) < options["noiseless_fraction"]] = 1.0
    noisy = photons > 1.0
    b[noisy] = gen.poisson(np.clip(b[noisy], 0, None) * photons[noisy, None])
    return (b.astype(np.float32), (obj * photons[:, None, None]).astype(np.float32), depth)


_WORKER = {}


def _worker_init(sets, options):
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _WORKER.update(sets=sets, options=options)


def _worker_measure(index, seed, count):
    return _measure(_WORKER["sets"][index], _WORKER["options"], seed, count)


def _groups(sets, options, prob, gen, count, workers):
    """Yield ``(set index, measurements)`` for one group after another, in a fixed order.

    Each group's pattern set and seed are drawn from ``gen`` here, so the stream is the same
    whether ``workers`` processes make the groups ahead (in parallel, ``2 * workers`` in
    flight) or this process makes them one by one (``workers=0``).
    """
    import collections
    import concurrent.futures
    import multiprocessing

    def draw():
        return int(gen.choice(len(sets), p=prob)), int(gen.integers(2 ** 63))

    if workers == 0:
        while True:
            i, seed = draw()
            yield i, _measure(sets[i], options, seed, count)
    # spawn, not fork: the parent may hold CUDA or OpenMP state that a fork must not copy
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
        initargs=(sets, options))
    try:
        pending = collections.deque()
        while True:
            while len(pending) < 2 * workers:
                i, seed = draw()
                pending.append((i, pool.submit(_worker_measure, i, seed, count)))
            i, future = pending.popleft()
            yield i, future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _pairs(plan, measured, device):
    """Network input and target (count, 1, n, n) on ``device`` from one group's buckets, and
    the ``(project, mean, std)`` that :func:`~torchscope.ghost._mwcnn.normalised_projection`
    needs for networks of several stages."""
    import torch

    from torchscope.backend import to_tensor
    from torchscope.ghost._mwcnn import normalise
    from torchscope.ghost._plan import make_frame

    b, target, depth = measured
    frame = make_frame(plan, to_tensor(b, device=device, dtype=torch.float32), depth, None, 1e-6)
    z, mean, std = normalise(frame.pinv())
    target = to_tensor(target, device=device, dtype=torch.float32)
    return z.unsqueeze(1), ((target - mean) / std).unsqueeze(1), (frame.project, mean, std)


def train_mwcnn(patterns, *, steps=2000, batch_size=16, seed=None, device=None, lr=1e-3,
                model=None, channels=(16, 32, 64, 128), convs=2, stages=None, weights=None,
                modulation_depth=(0.65, 0.95), mask_error=(0.0, 0.06), blur=(0.0, 0.6),
                photons=(1e2, 1e5), perfect_fraction=0.2, noiseless_fraction=0.05, group=4,
                mix=None, workers=0):
    """Train the ``mwcnn`` network on simulated measurements with a pattern set (a generator).

    Each step draws ``batch_size`` synthetic objects (photographs from scikit-image's bundled
    images except the held-out ones, dead leaves, 1/f fields, binary shapes and letters; see
    :func:`synthetic_objects`), simulates their buckets with random mask flaws and doses, and
    takes one Adam step on the mean absolute error between the network's refinement of the
    pseudo-inverse image and the object (both normalised by the pseudo-inverse's mean and
    standard deviation). The learning rate follows a cosine from ``lr`` to 0.

    Parameters
    ----------
    patterns : array_like (M, n, n), or a list of them
        The nominal masks the model is for (e.g. the user's own set). Several sets (sizes,
        sampling ratios) train one model for all of them.
    steps : int, optional
        Optimisation steps.
    batch_size : int, optional
        Objects per step.
    seed : None or int, optional
        Seeds the objects, the measurements and the initial weights.
    device : None, str or torch.device, optional
    lr : float, optional
        Initial learning rate of Adam.
    model : MWCNN, optional
        Start from this model (e.g. a shipped one, to fine-tune it on the user's masks); it is
        copied, not changed. ``channels`` and ``convs`` are then ignored.
    channels, convs : optional
        Architecture of a new model, see :class:`~torchscope.ghost._mwcnn.MWCNN`.
    stages : int, optional
        Passes of the network with data consistency between them (default: 1 for a new model,
        the model's own for ``model``). Given with ``model``, training starts from a cascade of
        the model's weights (:meth:`~torchscope.ghost._mwcnn.MWCNN.cascade`).
    weights : sequence of float, optional
        Relative share of steps per pattern set (default: equal).
    modulation_depth : (float, float), optional
        Range of ``D_r`` of the simulated masks (uniform). Known to the pseudo-inverse, as it
        is when ``reconstruct`` gets ``modulation_depth``.
    mask_error : (float, float), optional
        Range of the per-pixel relative transmission error.
    blur : (float, float), optional
        Range of the edge blur of the masks, in mask pixels (half of the mask sets: none).
    photons : (float, float), optional
        Range (log-uniform) of the dose, photons per open pixel, drawn per object.
    perfect_fraction : float, optional
        Share of mask sets simulated without flaws (``D_r = 1``, no error, no blur).
    noiseless_fraction : float, optional
        Share of objects measured without Poisson noise.
    group : int, optional
        Consecutive batches simulated with one draw of pattern set and mask flaws (simulating
        a group at once is cheaper).
    mix : dict, optional
        Share of each kind of object, see :func:`synthetic_objects` (default :data:`MIX`).
    workers : int, optional
        Processes that simulate the measurements ahead of the optimiser (0: this process, one
        group at a time). The objects and measurements do not depend on it: use workers to
        keep a GPU busy.

    Yields
    ------
    TrainingProgress
        ``(step, steps, loss, model)`` after every step.

    Returns
    -------
    MWCNN
        The trained model (the generator's return value; ``model.config`` records the sizes,
        sampling ratios, orders and the training recipe). Save it with :func:`save_mwcnn`.
    """
    import copy

    import torch

    from torchscope.backend import check_int, check_real, get_device
    from torchscope.ghost._mwcnn import MWCNN, _check_model, normalised_projection
    from torchscope.ghost._plan import get_plan

    steps = check_int("steps", steps, 1, type_error=ValueError)
    batch_size = check_int("batch_size", batch_size, 1, type_error=ValueError)
    group = check_int("group", group, 1, type_error=ValueError)
    workers = check_int("workers", workers, 0, type_error=ValueError)
    lr = check_real("lr", lr, 0, np.inf, low_open=True, type_error=ValueError)
    options = {
        "modulation_depth": _range("modulation_depth", modulation_depth, 1e-3, 1.0),
        "mask_error": _range("mask_error", mask_error, 0.0, 1.0),
        "blur": _range("blur", blur, 0.0, 10.0),
        "photons": _range("photons", photons, 1.0 + 1e-9, np.inf),
        "perfect_fraction": _range("perfect_fraction", perfect_fraction, 0, 1)[0],
        "noiseless_fraction": _range("noiseless_fraction", noiseless_fraction, 0, 1)[0],
        "mix": dict(MIX if mix is None else mix),
    }
    synthetic_objects(8, 0, mix=options["mix"])  # validates mix
    sets = _pattern_sets(patterns)
    if weights is None:
        weights = np.ones(len(sets))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(sets),) or not (weights >= 0).all() or not weights.sum() > 0:
        raise ValueError(f"weights={weights!r}: expected one non-negative share per pattern "
                         f"set ({len(sets)}).")
    dev = get_device(device)
    gen = np.random.default_rng(seed)
    if stages is not None:
        stages = check_int("stages", stages, 1, type_error=ValueError)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(gen.integers(2 ** 63)) if seed is not None
                              else torch.seed())
            net = MWCNN(channels, convs, stages or 1)
    else:
        _check_model(model)
        net = copy.deepcopy(model) if stages in (None, model.stages) else model.cascade(stages)
    for p in sets:
        if p.shape[1] % net.multiple:
            raise ValueError(f"patterns of {p.shape[1]} x {p.shape[2]} pixels: the network's "
                             f"{net.levels} wavelet levels need sides that are multiples of "
                             f"{net.multiple}.")
    net = net.to(dev).train()
    plans = [get_plan(p) for p in sets]
    described = [_describe(p, plan) for p, plan in zip(sets, plans)]
    net.config.update(
        sizes=sorted({p.shape[1] for p in sets}),
        orders=sorted({o for o, _ in described if o is not None}),
        ratios=sorted({round(r, 6) for _, r in described}),
        hadamard=all(plan.hadamard is not None for plan in plans),
        training={"steps": steps, "batch_size": batch_size, "seed": seed, "lr": float(lr),
                  "loss": "L1 on images normalised by the pseudo-inverse's mean and std",
                  "optimizer": "Adam, cosine learning rate to 0, gradient norm clipped at 1",
                  "pattern_sets": [[int(s) for s in p.shape] for p in sets],
                  "weights": [float(w) for w in weights / weights.sum()],
                  **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
                  "group": group, "sources": list(TRAINING_SOURCES),
                  "held_out_sources": list(HELD_OUT_SOURCES),
                  "held_out_letters": HELD_OUT_LETTERS,
                  "started_from": None if model is None else dict(model.config)},
    )
    opt = torch.optim.Adam(net.parameters(), lr=float(lr))
    groups = _groups(sets, options, weights / weights.sum(), gen, batch_size * group, workers)
    try:
        for step in range(1, steps + 1):
            if (step - 1) % group == 0:
                i, measured = next(groups)
                xs, ys, (project, mean, std) = _pairs(plans[i], measured, dev)
            k = (step - 1) % group * batch_size
            part = slice(k, k + batch_size)
            x, y = xs[part], ys[part]
            proj = normalised_projection(project, mean[part], std[part]) if net.stages > 1 \
                else None
            for g in opt.param_groups:
                g["lr"] = float(lr) * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
            with torch.enable_grad():  # also when called under no_grad (e.g. a worker thread)
                loss = (net(x, proj) - y).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            yield TrainingProgress(step, steps, float(loss.detach()), net)
    finally:
        groups.close()
    return net.eval()
