"""The region scorer's training set, after the paper's recipe at this machine's scale.

Recipe (``papers/001``, section 3.4): sharp images (natural, man-made, text, faces) are
blurred with random kernels of 11 x 11 to 55 x 55 pixels plus Gaussian noise; every
228 x 228 window at a stride of 20 pixels becomes a sample; its kernel is estimated from the
window alone, and the window is labelled good (1) when the estimate is similar to the true
kernel (Hu and Yang's similarity above 0.75).

Here:

- sharp images: scikit-image's bundled photographs that need no download (natural scenes,
  textures, a face, man-made objects, microscopy) and pages of text rendered by code; each
  large image gives several crops;
- kernels: :func:`torchscope.deblur.motion_kernel` with odd sizes drawn from 11 to 55;
  kernels that are nearly a single pixel (``max(k) / ||k|| > max_trivial``) are drawn again,
  since no window could then beat the trivial estimate;
- noise: Gaussian, standard deviation 2 / 255 (the paper's variance 4 on the 0-255 scale);
- the estimate: :func:`torchscope.deblur.estimate_kernel` (dark channel), all windows of a
  blurred image in one batch, with the true kernel's size (``kernel_cut``: the estimator's
  default; the committed label files in ``data/deblur_scorer_labels`` were made with the
  authors' 0.05, the default before 2026-12-07);
- the label guards against the trivial estimate: a one-pixel kernel already scores
  ``max(k) / ||k||`` against ``k``, so a window is good only when its similarity exceeds
  0.75 *and* that trivial score by ``margin`` (0.1);
- the split into train, validation and test is by sharp *source* image (all crops, kernels
  and windows of one source go to the same split), never by window.

Every blurred image is one ``.npz`` shard in the output folder (the blurred image as float16,
the true kernel, the windows, the estimated kernels' similarities, the labels), written as
soon as it is labelled: an interrupted build resumes where it stopped. The build goes round
all sources with a first kernel each, then a second, and so on, so a build stopped early still
holds every source and every split. Run
``python -m torchscope.deblur._dataset OUT_DIR`` (``--help`` lists the options).

Label files (``labels_dir``, ``--labels DIR``): everything in a shard but the similarities is
regenerated from the seed in milliseconds, so only the similarities need keeping. With a labels
folder, each shard labelled by estimation (or found in ``OUT_DIR`` without one) also gets
``<shard>.json`` there (2.3 KB for 144 windows): the similarities at float32 precision, the
trivial score, the kernel size, the window count, the settings that determine the shard and the
sha256 of the blurred image (float16 bytes). A shard missing from ``OUT_DIR`` whose label file
exists is then rebuilt without any estimation: the image is regenerated, checked against the
sha256 (a mismatch means another numpy, torch or ``blur``: the labels must be rebuilt), and
labelled from the stored similarities. A label file made with other settings is an error, never
mixed in. So a build can be spread over several sessions, and the set rebuilt anywhere.
"""

import argparse
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from torchscope.backend import get_device
from torchscope.deblur._blur import blur
from torchscope.deblur._estimate import KERNEL_CUT, estimate_kernel
from torchscope.deblur._metrics import kernel_similarity
from torchscope.deblur._motion import motion_kernel
from torchscope.deblur._regions import grid_boxes

# scikit-image images bundled with the package (no download): name -> kind
BUNDLED = {
    "astronaut": "face", "brick": "texture", "camera": "natural", "cell": "microscopy",
    "chelsea": "natural", "coffee": "man-made", "coins": "man-made", "grass": "texture",
    "gravel": "texture", "horse": "man-made", "hubble_deep_field": "natural",
    "immunohistochemistry": "microscopy", "logo": "man-made", "moon": "natural",
    "retina": "microscopy", "rocket": "man-made", "colorwheel": "man-made",
    "shepp_logan_phantom": "man-made", "motorcycle": "man-made",
}
SPLITS = ("train", "val", "test")
FORMAT = "torchscope.deblur.scorer_dataset/1"
LABELS_FORMAT = "torchscope.deblur.scorer_labels/1"
# the build settings that determine a shard: a label file must agree on all of them
LABEL_KEYS = ("seed", "size", "stride", "crop", "noise_sigma", "iterations", "kernel_cut",
              "threshold", "margin", "max_trivial", "kernel_sizes")
# the value of a key that files written before it existed were made with
_BEFORE_KEY = {"kernel_cut": 0.05}


def _load_bundled(name):
    from skimage import data

    if name == "motorcycle":
        return as_gray_unit(data.stereo_motorcycle()[0])
    return as_gray_unit(getattr(data, name)())


def as_gray_unit(image):
    """An image file's array as float64 grayscale in [0, 1] (integers scaled by their dtype's
    maximum, RGBA composed on white, RGB by luminance)."""
    from skimage import color

    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.float64)
    elif image.dtype.kind in "iu":
        image = image / float(np.iinfo(image.dtype).max)
    if image.ndim == 3 and image.shape[-1] == 4:  # RGBA on white
        alpha = image[..., 3:]
        image = image[..., :3] * alpha + (1 - alpha)
    if image.ndim == 3:
        image = color.rgb2gray(image)
    return np.clip(image.astype(np.float64), 0, 1)


def text_page(seed, shape=(480, 480)):
    """A page of random words rendered in black on a light background (PIL's default font)."""
    from PIL import Image, ImageDraw, ImageFont

    gen = np.random.default_rng(seed)
    background = int(gen.integers(200, 256))
    ink = int(gen.integers(0, 60))
    page = Image.new("L", (shape[1], shape[0]), background)
    draw = ImageDraw.Draw(page)
    size = int(gen.integers(14, 40))
    font = ImageFont.load_default(size=size)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    y = int(gen.integers(0, size))
    while y < shape[0]:
        words = [''.join(gen.choice(letters, int(gen.integers(1, 10))))
                 for _ in range(int(gen.integers(3, 12)))]
        draw.text((int(gen.integers(0, 2 * size)), y), " ".join(words), fill=ink, font=font)
        y += int(size * gen.uniform(1.2, 1.8))
    return np.asarray(page, dtype=np.float64) / 255.0


def sharp_sources(*, text_pages=6):
    """Names of the sharp source images: the bundled ones and ``text_pages`` rendered pages."""
    return list(BUNDLED) + [f"text{i}" for i in range(text_pages)]


def load_source(name):
    """A sharp source image as float64 in [0, 1] (grayscale)."""
    if name.startswith("text"):
        return text_page(int(name[4:]))
    return _load_bundled(name)


def split_sources(names, *, fractions=(0.7, 0.15, 0.15), seed=0):
    """Assign each source image to ``train``, ``val`` or ``test`` (a seeded shuffle)."""
    gen = np.random.default_rng(seed)
    order = [str(name) for name in gen.permutation(sorted(names))]
    n = len(order)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    split = {}
    for i, name in enumerate(order):
        split[name] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return split


def crops(image, crop, count, gen):
    """Up to ``count`` random ``crop`` x ``crop`` windows of ``image`` (the image if smaller)."""
    h, w = image.shape
    if h <= crop and w <= crop:
        return [image]
    ch, cw = min(crop, h), min(crop, w)
    out = []
    for _ in range(count):
        r = int(gen.integers(0, h - ch + 1))
        c = int(gen.integers(0, w - cw + 1))
        out.append(image[r:r + ch, c:c + cw])
    return out


def random_kernel(gen, sizes=(11, 55), max_trivial=0.6):
    """A motion kernel of random odd size in ``sizes`` whose one-pixel score is at most
    ``max_trivial``."""
    lo, hi = sizes
    for _ in range(1000):
        size = int(gen.integers(lo // 2, hi // 2 + 1)) * 2 + 1
        k = motion_kernel(size, rng=gen)
        if k.max() / np.linalg.norm(k) <= max_trivial:
            return k
    raise RuntimeError(f"no kernel of sizes {sizes} with a one-pixel score <= {max_trivial} "
                       "in 1000 draws; raise max_trivial.")


def label_windows(blurred, kernel, boxes, *, threshold=0.75, margin=0.1, batch=64, device=None,
                  iterations=3, kernel_cut=KERNEL_CUT):
    """Estimate the kernel in every window and label it; returns (similarity, trivial, label).

    The similarities are rounded to float32 precision (the estimates are float32), so that a
    label file holds them exactly.
    """
    size = kernel.shape[0]
    sims = []
    for start in range(0, len(boxes), batch):
        chunk = boxes[start:start + batch]
        patches = np.stack([blurred[r:r + h, c:c + w] for r, c, h, w in chunk])
        est = estimate_kernel(patches, size, device=device, iterations=iterations,
                              kernel_cut=kernel_cut)
        sims.append(kernel_similarity(est, kernel))
    sims = np.concatenate(sims).astype(np.float32).astype(np.float64)
    trivial = _trivial(kernel)
    return sims, trivial, _labels(sims, trivial, threshold, margin)


def _source_crops(image, s_index, *, seed, crop, count):
    """The sharp crops of source number ``s_index`` (seeded by the build seed and that index)."""
    return crops(image, crop, count, np.random.default_rng([seed, s_index]))


def _blurred(sharp, indices, config):
    """The true kernel and the blurred image of one shard; ``indices`` is (seed, source, crop,
    kernel round), which seeds the kernel and the noise."""
    gen = np.random.default_rng(list(indices))
    kernel = random_kernel(gen, tuple(config["kernel_sizes"]), config["max_trivial"])
    # on the CPU whatever the estimation's device: label files name its sha256
    return kernel, blur(sharp, kernel, noise_sigma=config["noise_sigma"], rng=gen, device="cpu")


def regenerate(label_file, *, image=None):
    """One blurred image of the set, regenerated from its label file without any estimation.

    Parameters
    ----------
    label_file : path-like
        A label file (see the module notes).
    image : ndarray, optional
        The sharp source image (default: the built-in source the file names).

    Returns
    -------
    dict
        ``blurred`` (float16, as in a shard), ``kernel``, ``boxes``, ``similarity``,
        ``trivial``, ``labels``, ``source``, ``name``.

    Raises
    ------
    ValueError
        When the file is not a label file, or the regenerated image is not the labelled one.
    """
    path = Path(label_file)
    record = _record(path)
    config, s_index, c_index = record["config"], record["s_index"], record["c_index"]
    if image is None:
        image = load_source(record["source"])
    sharp = _source_crops(image, s_index, seed=config["seed"], crop=config["crop"],
                          count=c_index + 1)[c_index]
    kernel, blurred = _blurred(sharp, (config["seed"], s_index, c_index, record["k_index"]),
                               config)
    boxes = grid_boxes(blurred.shape, config["size"], config["stride"])
    sims = _check_labels(path, record, s_index=s_index, kernel=kernel, blurred=blurred,
                         boxes=boxes)
    trivial = float(record["trivial"])  # the labelling's own value (checked just above)
    return {"blurred": blurred.astype(np.float16), "kernel": kernel, "boxes": boxes,
            "similarity": sims, "trivial": trivial,
            "labels": _labels(sims, trivial, config["threshold"], config["margin"]),
            "source": record["source"], "name": path.stem}


def _trivial(kernel):
    """The one-pixel estimate's similarity to ``kernel``."""
    return float(kernel.max() / np.linalg.norm(kernel))


def _labels(sims, trivial, threshold, margin):
    """Good windows: similarity above ``threshold`` and the trivial score plus ``margin``."""
    return (sims > threshold) & (sims >= trivial + margin)


def _image_sha256(blurred):
    """sha256 of a blurred image as stored in a shard (little-endian float16 bytes)."""
    return hashlib.sha256(np.ascontiguousarray(blurred, dtype="<f2").tobytes()).hexdigest()


def _float32_list(values):
    """``values`` at float32 precision as the shortest floats that read back exactly."""
    values = np.asarray(values, dtype=np.float32)
    short = [float(str(v)) for v in values]
    return [a if np.float32(a) == v else float(v) for a, v in zip(short, values)]


def _write_atomic(path, write):
    """Call ``write(file)`` on a temporary file, then move it to ``path`` (never half a file)."""
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        write(f)
    os.replace(part, path)


def _write_labels(path, ids, config, kernel, blurred, sims, seconds, estimated_with):
    """Write the label file of one shard (see the module notes); ``ids`` names the shard's
    source and its seed indices."""
    record = {"format": LABELS_FORMAT, "shard": path.stem, **ids,
              "config": {key: config[key] for key in LABEL_KEYS},
              "kernel_size": int(kernel.shape[0]), "shape": list(blurred.shape),
              "windows": len(sims), "blurred_sha256": _image_sha256(blurred),
              "trivial": _trivial(kernel), "seconds": float(seconds),
              "estimated_with": estimated_with}
    head = json.dumps(record, indent=1)[:-2]  # the similarities on one line, not one each
    text = f'{head},\n "similarity": {json.dumps(_float32_list(sims))}\n}}\n'
    _write_atomic(path, lambda f: f.write(text.encode()))


def _save_shard(path, **arrays):
    """Write one shard (``.npz``), never half of one."""
    _write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def _labels_from_shard(path, label_path, ids, config, kernel, blurred):
    """Write the label file of a shard built before (after checking it is this build's)."""
    with np.load(path) as z:
        sims, seconds, stored = z["similarity"], float(z["seconds"]), z["blurred"]
    if _image_sha256(stored) != _image_sha256(blurred):
        raise ValueError(f"{path} is not the shard this build regenerates from its seed "
                         "(another seed, settings or version); build into an empty folder to "
                         "write its label file.")
    _write_labels(label_path, ids, config, kernel, blurred, sims, seconds,
                  estimated_with=f"unknown: written from the shard {path.name}")


def _provenance(device, batch):
    """Where and with what the kernels were estimated (recorded, never checked)."""
    import torch

    return {"device": str(get_device(device)), "batch": batch, "numpy": np.__version__,
            "torch": torch.__version__}


def _record(path):
    """A label file's record, after checking its format."""
    record = json.loads(Path(path).read_text())
    if record.get("format") != LABELS_FORMAT:
        raise ValueError(f"{path} is not a scorer label file (format {record.get('format')!r}, "
                         f"expected {LABELS_FORMAT!r}).")
    return record


def _read_labels(path, config):
    """A label file's record, after checking its format and that its settings are ``config``'s."""
    record = _record(path)
    pairs = _differing(record.get("config", {}), config, "labels")
    if pairs:
        raise ValueError(f"{path} was made with other settings than this build; differing keys: "
                         f"{pairs}. Labels of other settings are never mixed in: build with "
                         "the same settings, or give another (empty) labels folder.")
    return record


def _differing(made, config, what):
    """The settings (of ``LABEL_KEYS``) in which ``made`` differs from ``config``, as text."""
    def value(key):
        return made.get(key, _BEFORE_KEY.get(key))

    return ", ".join(f"{key} ({what} {value(key)!r}, build {config[key]!r})"
                     for key in LABEL_KEYS if value(key) != config[key])


def _check_labels(path, record, *, s_index, kernel, blurred, boxes):
    """Check that a label file belongs to the regenerated shard; returns its similarities."""
    rebuild = ("The labels were made with another numpy, torch or blur version (or other "
               "source images) and must be rebuilt: remove the label files and build with "
               "--labels again, which estimates the kernels anew.")
    if record["s_index"] != s_index:
        raise ValueError(f"{path}: made with {record['source']!r} as source number "
                         f"{record['s_index']}, this build has it as number {s_index} (another "
                         "list of sources); its shard cannot be regenerated. " + rebuild)
    found = {"kernel size": (record["kernel_size"], int(kernel.shape[0])),
             "image shape": (record["shape"], list(blurred.shape)),
             "blurred image sha256": (record["blurred_sha256"], _image_sha256(blurred)),
             "window count": (record["windows"], len(boxes))}
    # the kernel's norm rounds differently on other CPUs (vectorised sums): its last digits
    # may differ, anything more means another kernel
    trivial = _trivial(kernel)
    if not math.isclose(record["trivial"], trivial, rel_tol=1e-9):
        found["trivial score"] = (record["trivial"], trivial)
    for what, (stored, regenerated) in found.items():
        if stored != regenerated:
            raise ValueError(f"{path}: the {what} regenerated from the seed ({regenerated}) is "
                             f"not the one in the label file ({stored}). " + rebuild)
    sims = np.asarray(record["similarity"], dtype=np.float32).astype(np.float64)
    if sims.shape != (len(boxes),):
        raise ValueError(f"{path} holds {sims.size} similarities for {len(boxes)} windows.")
    return sims


def build(out, *, sources=None, kernels_per_crop=4, crops_per_source=2, crop=448, size=228,
          stride=20, kernel_sizes=(11, 55), noise_sigma=2 / 255, threshold=0.75, margin=0.1,
          max_trivial=0.6, seed=0, device=None, batch=64, iterations=3, kernel_cut=KERNEL_CUT,
          labels_dir=None, labelled_only=False, log=print):
    """Build (or resume) the training set in the folder ``out``.

    Parameters
    ----------
    out : path-like
        Output folder: one ``.npz`` shard per blurred image and ``dataset.json``.
    sources : list of str or dict, optional
        Source names (default: :func:`sharp_sources`), or a dict of name -> sharp image
        (2-D, in [0, 1]) to use instead of the built-in sources.
    kernels_per_crop, crops_per_source, crop : int
        Each source gives ``crops_per_source`` random ``crop`` x ``crop`` windows (one when
        it is not larger), each blurred with ``kernels_per_crop`` random kernels.
    size, stride : int
        The windows (the paper: 228 and 20).
    kernel_sizes : (int, int)
        Range of the odd kernel sizes (the paper: 11 to 55).
    noise_sigma, threshold, margin, max_trivial : float
        See the module notes.
    seed : int
        Seeds the split, crops, kernels and noise (per shard, so a resumed build gives the
        same shards).
    device, batch, iterations, kernel_cut
        For the kernel estimation: device, windows per batch, and :func:`estimate_kernel`'s
        ``iterations`` and ``kernel_cut`` (settings of the labels: label files made with
        other ones are refused; files from before ``kernel_cut`` was recorded were made
        with 0.05).
    labels_dir : path-like, optional
        Folder of label files (see the module notes): a shard missing from ``out`` is rebuilt
        from its label file there without estimation; a shard labelled by estimation, or found
        in ``out`` without a label file, gets one.

    Raises
    ------
    ValueError
        When a label file was made with other settings (naming the differing keys), or does
        not match its regenerated shard (another numpy, torch or blur version).

    Returns
    -------
    dict
        The dataset description written to ``dataset.json``.
    """
    out = Path(out)
    if labelled_only and labels_dir is None:
        raise ValueError("labelled_only=True needs labels_dir, the folder of label files.")
    out.mkdir(parents=True, exist_ok=True)
    if labels_dir is not None:
        labels_dir = Path(labels_dir)
        labels_dir.mkdir(parents=True, exist_ok=True)
    if sources is None:
        sources = sharp_sources()
    images = dict(sources) if isinstance(sources, dict) else {}
    sources = list(sources)
    split = split_sources(sources, seed=seed)
    config = {"format": FORMAT, "size": size, "stride": stride,
              "kernel_sizes": list(kernel_sizes), "noise_sigma": noise_sigma,
              "threshold": threshold, "margin": margin, "max_trivial": max_trivial,
              "seed": seed, "crop": crop, "crops_per_source": crops_per_source,
              "kernels_per_crop": kernels_per_crop, "iterations": iterations,
              "kernel_cut": kernel_cut, "split": split}
    previous = out / "dataset.json"
    if previous.exists() and any(out.glob("*.npz")):
        pairs = _differing(json.loads(previous.read_text()), config, "shards there")
        if pairs:
            raise ValueError(f"{out} holds shards built with other settings; differing keys: "
                             f"{pairs}. Shards of other settings are never mixed in: build with "
                             "the same settings, or into another (empty) folder.")
    previous.write_text(json.dumps(config, indent=1))
    sharp_crops = {}  # source -> its crops; all sources per kernel round, so a stopped build
    for s_index, name in enumerate(sources):  # still covers every source and split
        image = images[name] if name in images else load_source(name)
        sharp_crops[name] = []
        for sharp in _source_crops(image, s_index, seed=seed, crop=crop,
                                   count=crops_per_source):
            if min(sharp.shape) < size:
                log(f"skip {name}: {sharp.shape} is smaller than {size}")
                break
            sharp_crops[name].append(sharp)
    for k_index in range(kernels_per_crop):
        for s_index, name in enumerate(sources):
            for c_index, sharp in enumerate(sharp_crops[name]):
                path = out / f"{name}_c{c_index}_k{k_index}.npz"
                label_path = None if labels_dir is None else labels_dir / f"{path.stem}.json"
                have_labels = label_path is not None and label_path.exists()
                if have_labels:
                    record = _read_labels(label_path, config)
                elif labelled_only:
                    continue
                if path.exists() and (label_path is None or have_labels):
                    continue
                kernel, blurred = _blurred(sharp, (seed, s_index, c_index, k_index), config)
                boxes = grid_boxes(blurred.shape, size, stride)
                ids = {"source": name, "s_index": s_index, "c_index": c_index,
                       "k_index": k_index}
                if path.exists():  # a shard without a label file: write one from the shard
                    _labels_from_shard(path, label_path, ids, config, kernel, blurred)
                    log(f"{label_path.name}: labels written from the shard {path.name}")
                    continue
                trivial = _trivial(kernel)
                if have_labels:
                    sims = _check_labels(label_path, record, s_index=s_index, kernel=kernel,
                                         blurred=blurred, boxes=boxes)
                    labels, seconds = _labels(sims, trivial, threshold, margin), record["seconds"]
                else:
                    t0 = time.perf_counter()
                    sims, trivial, labels = label_windows(blurred, kernel, boxes,
                                                          threshold=threshold, margin=margin,
                                                          batch=batch, device=device,
                                                          iterations=iterations,
                                                          kernel_cut=kernel_cut)
                    seconds = time.perf_counter() - t0
                    if label_path is not None:  # first the label file: it outlives the shard
                        _write_labels(label_path, ids, config, kernel, blurred, sims, seconds,
                                      estimated_with=_provenance(device, batch))
                _save_shard(path, blurred=blurred.astype(np.float16), kernel=kernel,
                            boxes=boxes, similarity=sims, trivial=trivial, labels=labels,
                            source=name, split=split[name], seconds=seconds)
                how = (f"from {label_path.name}" if have_labels else
                       f"{seconds:.1f} s ({seconds / len(boxes):.2f} s per window)")
                log(f"{path.name}: {len(boxes)} windows, kernel {kernel.shape[0]}, "
                    f"{labels.mean():.0%} good, {how}")
    return config


def load(folder):
    """The shards of a built set: a list of dicts (arrays and metadata), sorted by file name."""
    shards = []
    for path in sorted(Path(folder).glob("*.npz")):
        with np.load(path) as z:
            shard = {k: z[k] for k in z.files}
        for key in ("source", "split"):
            shard[key] = str(shard[key])
        shard["name"] = path.stem
        shards.append(shard)
    if not shards:
        raise FileNotFoundError(f"no dataset shards (*.npz) in {folder}; build them with "
                                "`python -m torchscope.deblur._dataset FOLDER`.")
    return shards


def main(argv=None):
    ap = argparse.ArgumentParser(description="Build the deblur region scorer's training set.")
    ap.add_argument("out", help="output folder (resumes if it holds shards)")
    ap.add_argument("--kernels-per-crop", type=int, default=4)
    ap.add_argument("--crops-per-source", type=int, default=2)
    ap.add_argument("--text-pages", type=int, default=6)
    ap.add_argument("--crop", type=int, default=448)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--kernel-cut", type=float, default=KERNEL_CUT,
                    help="estimate_kernel's kernel_cut (default %(default)s; the committed "
                         "label files were made with 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--labels", default=None, metavar="DIR",
                    help="label-file folder: shards missing from OUT are rebuilt from their "
                         "label files without estimation, new labels are written there")
    ap.add_argument("--labelled-only", action="store_true",
                    help="with --labels: only the shards that have a label file there (no "
                         "estimation at all)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    build(args.out, sources=sharp_sources(text_pages=args.text_pages),
          kernels_per_crop=args.kernels_per_crop, crops_per_source=args.crops_per_source,
          crop=args.crop, batch=args.batch, iterations=args.iterations,
          kernel_cut=args.kernel_cut, seed=args.seed,
          device=args.device, labels_dir=args.labels, labelled_only=args.labelled_only)


if __name__ == "__main__":
    main()
