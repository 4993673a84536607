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
  blurred image in one batch, with the true kernel's size;
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
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from torchscope.deblur._blur import blur
from torchscope.deblur._estimate import estimate_kernel
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


def _load_bundled(name):
    from skimage import color, data

    if name == "motorcycle":
        image = data.stereo_motorcycle()[0]
    else:
        image = getattr(data, name)()
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
                  iterations=3):
    """Estimate the kernel in every window and label it; returns (similarity, trivial, label)."""
    size = kernel.shape[0]
    sims = []
    for start in range(0, len(boxes), batch):
        chunk = boxes[start:start + batch]
        patches = np.stack([blurred[r:r + h, c:c + w] for r, c, h, w in chunk])
        est = estimate_kernel(patches, size, device=device, iterations=iterations)
        sims.append(kernel_similarity(est, kernel))
    sims = np.concatenate(sims)
    trivial = float(kernel.max() / np.linalg.norm(kernel))
    labels = (sims > threshold) & (sims >= trivial + margin)
    return sims, trivial, labels


def build(out, *, sources=None, kernels_per_crop=4, crops_per_source=2, crop=448, size=228,
          stride=20, kernel_sizes=(11, 55), noise_sigma=2 / 255, threshold=0.75, margin=0.1,
          max_trivial=0.6, seed=0, device=None, batch=64, iterations=3, log=print):
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
    device, batch, iterations
        For the kernel estimation: device, windows per batch, iterations per level.

    Returns
    -------
    dict
        The dataset description written to ``dataset.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if sources is None:
        sources = sharp_sources()
    images = dict(sources) if isinstance(sources, dict) else {}
    sources = list(sources)
    split = split_sources(sources, seed=seed)
    config = {"format": FORMAT, "size": size, "stride": stride,
              "kernel_sizes": list(kernel_sizes), "noise_sigma": noise_sigma,
              "threshold": threshold, "margin": margin, "max_trivial": max_trivial,
              "seed": seed, "crop": crop, "crops_per_source": crops_per_source,
              "kernels_per_crop": kernels_per_crop, "iterations": iterations, "split": split}
    (out / "dataset.json").write_text(json.dumps(config, indent=1))
    sharp_crops = {}  # source -> its crops; all sources per kernel round, so a stopped build
    for s_index, name in enumerate(sources):  # still covers every source and split
        image = images[name] if name in images else load_source(name)
        gen = np.random.default_rng([seed, s_index])
        sharp_crops[name] = []
        for sharp in crops(image, crop, crops_per_source, gen):
            if min(sharp.shape) < size:
                log(f"skip {name}: {sharp.shape} is smaller than {size}")
                break
            sharp_crops[name].append(sharp)
    for k_index in range(kernels_per_crop):
        for s_index, name in enumerate(sources):
            for c_index, sharp in enumerate(sharp_crops[name]):
                path = out / f"{name}_c{c_index}_k{k_index}.npz"
                shard_gen = np.random.default_rng([seed, s_index, c_index, k_index])
                kernel = random_kernel(shard_gen, kernel_sizes, max_trivial)
                if path.exists():
                    continue
                blurred = blur(sharp, kernel, noise_sigma=noise_sigma, rng=shard_gen)
                boxes = grid_boxes(blurred.shape, size, stride)
                t0 = time.perf_counter()
                sims, trivial, labels = label_windows(blurred, kernel, boxes,
                                                      threshold=threshold, margin=margin,
                                                      batch=batch, device=device,
                                                      iterations=iterations)
                seconds = time.perf_counter() - t0
                np.savez_compressed(path, blurred=blurred.astype(np.float16), kernel=kernel,
                                    boxes=boxes, similarity=sims, trivial=trivial,
                                    labels=labels, source=name, split=split[name],
                                    seconds=seconds)
                log(f"{path.name}: {len(boxes)} windows, kernel {kernel.shape[0]}, "
                    f"{labels.mean():.0%} good, {seconds:.1f} s "
                    f"({seconds / len(boxes):.2f} s per window)")
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    build(args.out, sources=sharp_sources(text_pages=args.text_pages),
          kernels_per_crop=args.kernels_per_crop, crops_per_source=args.crops_per_source,
          crop=args.crop, batch=args.batch, iterations=args.iterations, seed=args.seed,
          device=args.device)


if __name__ == "__main__":
    main()
