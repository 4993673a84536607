"""CH-MWCNN: a Hadamard pseudo-inverse refined by a multi-level wavelet CNN (plain torch).

The paper's "compressible Hadamard plus multi-level wavelet CNN" (``papers/000``): the image
back-projected from the measured Hadamard rows (here the minimum-norm least-squares image of
:func:`torchscope.ghost.reconstruct` ``method="pinv"``) is cleaned by an MWCNN (Liu et al.,
*Multi-level Wavelet-CNN for Image Restoration*, CVPR workshops 2018, arXiv:1805.07071): a
U-Net whose pooling is a 2D Haar discrete wavelet transform (DWT) and whose up-sampling is its
inverse (IWT), so no information is thrown away between levels and the receptive field grows
fast at little cost.

The network sees the pseudo-inverse image normalised by its own mean and standard deviation
and predicts a correction (residual learning); the result is mapped back with the same mean and
standard deviation. So it works in whatever units the buckets have (photon counts or
intensities), and the result has the units of the ``pinv`` image.

This file imports torch at import time; it is only imported when ``mwcnn`` is used.
"""

import copy
import functools
import hashlib
import json
import pathlib
import warnings

import numpy as np
import torch
from torch import nn

FORMAT = "torchscope.ghost.mwcnn"
FORMAT_VERSION = 2  # 2: networks of several stages (a 'consistency' tensor)
WEIGHTS_DIR = pathlib.Path(__file__).with_name("weights")
_ARCH_KEYS = ("channels", "convs", "stages")
_CHUNK = 64  # images per forward pass: bounds the memory of very large stacks


# ----------------------------------------------------------------------- Haar wavelets
def dwt(x):
    """Orthonormal 2D Haar DWT: ``(B, C, H, W)`` -> ``(B, 4C, H/2, W/2)``.

    Each 2 x 2 block ``[[a, b], [c, d]]`` becomes ``LL = (a + b + c + d) / 2``,
    ``LH = (a + b - c - d) / 2`` (difference between rows), ``HL = (a - b + c - d) / 2``
    (between columns) and ``HH = (a - b - c + d) / 2``; the output holds the four sub-bands as
    channel blocks ``[LL, LH, HL, HH]``, each with the ``C`` input channels. The 4 x 4 map is
    symmetric and orthogonal, so the transform keeps the sum of squares and :func:`iwt` is its
    exact inverse. ``H`` and ``W`` must be even.
    """
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"dwt needs an even height and width, got {h} x {w}.")
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)
    a, bb = x[:, :, :, 0, :, 0], x[:, :, :, 0, :, 1]
    cc, d = x[:, :, :, 1, :, 0], x[:, :, :, 1, :, 1]
    s0, s1 = a + bb, cc + d  # row sums
    d0, d1 = a - bb, cc - d  # row differences
    return 0.5 * torch.cat((s0 + s1, s0 - s1, d0 + d1, d0 - d1), dim=1)


def iwt(y):
    """Inverse of :func:`dwt`: ``(B, 4C, H, W)`` -> ``(B, C, 2H, 2W)``."""
    b, c4, h, w = y.shape
    if c4 % 4:
        raise ValueError(f"iwt needs a multiple of 4 channels, got {c4}.")
    ll, lh, hl, hh = y.chunk(4, dim=1)
    s0, s1 = ll + lh, ll - lh
    d0, d1 = hl + hh, hl - hh
    a, bb = s0 + d0, s0 - d0
    cc, d = s1 + d1, s1 - d1
    top = torch.stack((a, bb), dim=-1)  # (b, c, h, w, 2)
    bottom = torch.stack((cc, d), dim=-1)
    x = torch.stack((top, bottom), dim=3)  # (b, c, h, 2, w, 2)
    return 0.5 * x.reshape(b, c4 // 4, 2 * h, 2 * w)


# ------------------------------------------------------------------------------ network
def _block(cin, cout, convs, last_relu=True):
    layers = []
    for i in range(convs):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1))
        if last_relu or i < convs - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MWCNN(nn.Module):
    """Multi-level wavelet CNN (Liu et al. 2018), residual, one channel in and out.

    Level ``l`` works at ``1 / 2**l`` of the image size with ``channels[l]`` feature maps: the
    encoder goes down by a Haar :func:`dwt` (4x the channels, half the size) followed by
    ``convs`` 3 x 3 convolutions with ReLU; the decoder comes back up by convolutions to 4x the
    channels of the level above and an :func:`iwt`, adding the encoder's features of that level
    (skip connections by sum, as in the paper). The last convolution is initialised to zero, so
    an untrained network returns its input.

    Parameters
    ----------
    channels : sequence of int
        Feature maps per level, full size first; ``len(channels) - 1`` wavelet levels, so the
        image side must be a multiple of ``2 ** (len(channels) - 1)``.
    convs : int
        3 x 3 convolutions per block.
    stages : int, optional
        Passes through the network (shared weights). Between two passes the measured part of
        the image is pulled back towards the measurement (data consistency):
        ``x - w (W^T W x - pinv)``, with ``W^T W`` the projection onto what the masks measure
        and a learnt weight ``w`` per step (starting at 1). With more than one stage,
        :meth:`forward` needs that projection.
    config : dict, optional
        Extra information kept with the model (training data, sizes, ratios; see
        :func:`save_mwcnn`).
    """

    def __init__(self, channels=(16, 32, 64, 128), convs=2, stages=1, config=None):
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2 or min(channels) < 1 or int(convs) < 1 or int(stages) < 1:
            raise ValueError(f"channels={channels}, convs={convs}, stages={stages}: expected at "
                             "least two levels of >= 1 channel, convs >= 1 and stages >= 1.")
        self.levels = len(channels) - 1
        self.stages = int(stages)
        self.head = _block(1, channels[0], convs)
        self.down = nn.ModuleList(
            _block(4 * channels[i], channels[i + 1], convs) for i in range(self.levels))
        # decoder: at level i + 1, convs mapping to 4 * channels[i], then IWT to level i
        self.up = nn.ModuleList()
        for i in range(self.levels):
            c = channels[i + 1]
            layers = list(_block(c, c, convs - 1)) if convs > 1 else []
            layers += [nn.Conv2d(c, 4 * channels[i], 3, padding=1), nn.ReLU(inplace=True)]
            self.up.append(nn.Sequential(*layers))
        self.tail = nn.Sequential(*_block(channels[0], channels[0], convs - 1),
                                  nn.Conv2d(channels[0], 1, 3, padding=1)) if convs > 1 else \
            nn.Conv2d(channels[0], 1, 3, padding=1)
        last = self.tail[-1] if isinstance(self.tail, nn.Sequential) else self.tail
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if self.stages > 1:
            self.consistency = nn.Parameter(torch.ones(self.stages - 1))
        self.config = dict(config or {})
        self.config.update(channels=channels, convs=int(convs), stages=self.stages)

    def cascade(self, stages):
        """A copy with ``stages`` passes of this network's weights (new consistency weights 1),
        on the same device, with the same dtype and mode."""
        config = {k: v for k, v in copy.deepcopy(self.config).items() if k not in _ARCH_KEYS}
        new = MWCNN(self.config["channels"], self.config["convs"], stages, config=config)
        mine = {k: v for k, v in self.state_dict().items() if k != "consistency"}
        new.load_state_dict({**new.state_dict(), **mine})  # strict: any other mismatch raises
        like = next(self.parameters())
        return new.to(like.device, like.dtype).train(self.training)

    @property
    def multiple(self):
        """Image sides must be multiples of this (``2 ** levels``)."""
        return 1 << self.levels

    def forward(self, z, project=None):
        """Refine normalised images ``z`` of shape ``(B, 1, H, W)``.

        ``project`` maps such images to their projection onto the measured subspace (in the
        same normalised units); it is needed when the network has more than one stage.
        """
        x = self._pass(z)
        if self.stages > 1:
            if project is None:
                raise ValueError(f"this MWCNN has {self.stages} stages: forward needs project "
                                 "(the projection onto the measured subspace).")
            for w in self.consistency:
                x = self._pass(x - w * (project(x) - z))
        return x

    def _pass(self, z):
        """One pass: ``z + correction``."""
        feats = [self.head(z)]
        for down in self.down:
            feats.append(down(dwt(feats[-1])))
        y = feats[-1]
        for i in reversed(range(self.levels)):
            y = iwt(self.up[i](y)) + feats[i]
        return z + self.tail(y)


def normalise(images):
    """``(z, mean, std)``: float32 images ``(B, H, W)`` scaled to zero mean and unit deviation.

    The network works on ``z``; ``z * std + mean`` maps its output back to the units of the
    input. A constant image keeps a tiny positive ``std`` (no division by zero).
    """
    x = images.to(torch.float32)
    mean = x.mean(dim=(1, 2), keepdim=True)
    std = x.std(dim=(1, 2), keepdim=True)
    std = torch.clamp(std, min=1e-6 * float(x.abs().amax()) + 1e-30)
    return (x - mean) / std, mean, std


def normalised_projection(project, mean, std, dtype=torch.float32):
    """``project`` (on images ``(B, H, W)`` in their own units and ``dtype``) in the units of
    :func:`normalise`, on ``(B, 1, H, W)`` float32 images: ``(P(z std + mean) - mean) / std``.
    """
    def apply(z):
        raw = (z.squeeze(1) * std + mean).to(dtype)
        return ((project(raw).to(torch.float32) - mean) / std).unsqueeze(1)
    return apply


def refine(model, images, project=None):
    """Apply ``model`` to pseudo-inverse images ``(B, H, W)`` (a tensor on the model's device).

    Each image is normalised by :func:`normalise`, refined, and mapped back. Returns a float32
    tensor of the same shape. Runs in chunks of ``_CHUNK`` images. ``project`` (the frame's
    projection onto the measured subspace, on images like ``images``) is needed by networks of
    more than one stage.
    """
    z, mean, std = normalise(images)
    z = z.unsqueeze(1)
    out = []
    for i in range(0, max(z.shape[0], 1), _CHUNK):
        part = slice(i, i + _CHUNK)
        proj = None if project is None else \
            normalised_projection(project, mean[part], std[part], images.dtype)
        out.append(model(z[part], proj))
    out = out[0] if len(out) == 1 else torch.cat(out)
    return out.squeeze(1) * std + mean


# ------------------------------------------------------------------------- save / load
def _check_model(model, name="model"):
    if not isinstance(model, MWCNN):
        raise TypeError(f"{name} must be an MWCNN (from train_mwcnn or load_mwcnn), got "
                        f"{type(model).__name__}.")


def save_mwcnn(path, model):
    """Save a model as safetensors, its configuration as JSON in the file's metadata (no pickle).

    The metadata is one entry, ``"torchscope.ghost.mwcnn"``, holding ``{"format_version": v,
    "config": model.config}`` as JSON with sorted keys, so the same model gives the same bytes
    (safetensors writes several metadata entries in an unspecified order); ``v`` is 1 for one
    pass and 2 for networks of several stages.

    Parameters
    ----------
    path : str or path-like
        Output file (``.safetensors`` by convention).
    model : MWCNN
        From :func:`train_mwcnn` or :func:`load_mwcnn`.

    Returns
    -------
    str
        The SHA-256 of the written file (hex).
    """
    from safetensors.torch import save_file

    _check_model(model)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    # version 1 files (one pass) stay readable by older torchscope; cascades need version 2
    version = 1 if model.stages == 1 else FORMAT_VERSION
    meta = {FORMAT: json.dumps({"format_version": version, "config": model.config},
                               sort_keys=True)}
    path = pathlib.Path(path)
    save_file(tensors, str(path), metadata=meta)
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: What an MWCNN weight file is called in error messages.
_WHAT = "torchscope MWCNN"


def _read_config(path, meta=None):
    """The configuration saved in an MWCNN weight file (from its ``meta`` when read already)."""
    from torchscope.backend import read_weights

    if meta is None:
        meta, _ = read_weights(path, _WHAT, tensors=False)
    path = pathlib.Path(path)
    try:
        entry = json.loads(meta[FORMAT])
        version, config = int(entry["format_version"]), dict(entry["config"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"path={str(path)!r} is a safetensors file but not a torchscope MWCNN "
                         f"(no valid {FORMAT!r} entry in its metadata).") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"path={str(path)!r} was written by a newer torchscope (format "
                         f"version {version}); update torchscope to read it.")
    return config


def load_mwcnn(path, *, device=None):
    """Load a model written by :func:`save_mwcnn` (or a shipped weight file).

    Parameters
    ----------
    path : str or path-like
    device : None, str or torch.device, optional
        Where to put the model (``None``: CUDA, then MPS, then the CPU).

    Returns
    -------
    MWCNN
        In evaluation mode; ``model.config`` holds the configuration saved with it.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        A file that is not an MWCNN weight file (not safetensors, truncated, another network,
        a newer format), or whose tensors do not fit the architecture it describes; the
        message names the file.
    """
    from torchscope.backend import build_network, get_device, load_weights, read_weights

    meta, state = read_weights(path, _WHAT)
    config = _read_config(path, meta)
    arch = {k: config[k] for k in _ARCH_KEYS if k in config}
    model = build_network(lambda: MWCNN(**arch, config=config), path, _WHAT)
    load_weights(model, state, path, _WHAT)
    return model.to(get_device(device)).eval()


# --------------------------------------------------------------------- shipped weights
@functools.cache
def shipped_configs():
    """``{file name: config}`` of the weight files that ship with the package."""
    return {p.name: _read_config(p) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


@functools.lru_cache(maxsize=8)
def _load_shipped(name, device):
    return load_mwcnn(WEIGHTS_DIR / name, device=device)


def _measured_rows(plan):
    """Sorted unique Hadamard row indices ``k`` measured by a plan (constant rows are k = 0)."""
    return np.unique(plan.hadamard[0])


@functools.lru_cache(maxsize=16)
def _row_order(n, order):
    """Sylvester row indices ``k = u n + v`` of the ``n x n`` Hadamard patterns in ``order``."""
    from torchscope.ghost._patterns import pattern_indices

    u, v = pattern_indices(n, order)
    return u * n + v


def _fits(config, n, rows):
    """Does a config cover ``n x n`` masks measuring the Hadamard ``rows`` (sorted, unique)?"""
    if n not in config.get("sizes", ()):
        return False
    return any(np.array_equal(np.sort(_row_order(n, order)[:len(rows)]), rows)
               for order in config.get("orders", ()))


def shipped_model(plan, device):
    """The shipped model for a pattern plan, or a ``ValueError`` that says why there is none."""
    configs = shipped_configs()
    h, w = plan.shape
    sizes = sorted({s for c in configs.values() for s in c.get("sizes", ())})
    if h != w or h not in sizes:
        raise ValueError(f"method='mwcnn': no shipped model for {h} x {w} masks (shipped: "
                         f"{', '.join(f'{s} x {s}' for s in sizes) or 'none'}). Train one on "
                         "your pattern set with train_mwcnn(patterns) and pass model=.")
    if plan.hadamard is None:
        raise ValueError("method='mwcnn': the shipped models were trained on Hadamard masks and "
                         "these patterns are not Hadamard rows. Train one on your pattern set "
                         "with train_mwcnn(patterns) and pass model=.")
    rows = _measured_rows(plan)
    ratio = len(rows) / plan.size
    fitting = [(name, c) for name, c in configs.items() if _fits(c, h, rows)]
    if not fitting:
        orders = sorted({o for c in configs.values() for o in c.get("orders", ())})
        raise ValueError(f"method='mwcnn': the {len(rows)} Hadamard rows measured are not the "
                         f"first {len(rows)} of an order the shipped models were trained on "
                         f"({orders}). Train one on your pattern set with "
                         "train_mwcnn(patterns) and pass model=.")
    name, config = min(fitting, key=lambda nc: min(abs(r - ratio) for r in nc[1]["ratios"]))
    lo, hi = min(config["ratios"]), max(config["ratios"])
    if not lo - 1e-9 <= ratio <= hi + 1e-9:
        warnings.warn(f"method='mwcnn': sampling ratio {ratio:.4f} is outside the range the "
                      f"shipped model {name} was trained on ({lo:.4f} to {hi:.4f}); expect "
                      "lower quality.", RuntimeWarning, stacklevel=4)
    return _load_shipped(name, str(device))


def user_model(model, n, device):
    """A user's model on ``device`` (a copy if it lives elsewhere: the input is not moved)."""
    _check_model(model, "model")
    sizes = model.config.get("sizes")
    if n % model.multiple or (sizes and n not in sizes):
        raise ValueError(f"model was trained for {sizes} masks (sides multiple of "
                         f"{model.multiple}); these patterns are {n} x {n}.")
    have, want = next(model.parameters()).device, torch.device(device)
    if have.type != want.type or (have.index or 0) != (want.index or 0):
        model = copy.deepcopy(model).to(want)
    return model

