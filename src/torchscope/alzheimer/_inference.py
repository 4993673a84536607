"""Using a trained model: probabilities, reconstructions, feature maps, occlusion sensitivity."""

import copy
import math

import numpy as np
import torch

from torchscope.alzheimer._io import check_unit_range
from torchscope.alzheimer._networks import LAYERS
from torchscope.alzheimer._train import Trained, _tensor
from torchscope.backend import check_int, get_device, to_numpy


def _check_model(model):
    if not isinstance(model, Trained):
        raise TypeError(
            f"model must be a Trained model (from train or load_model), got "
            f"{type(model).__name__}."
        )
    return model


def _on(model, device):
    """The model on ``device`` (a copy if it lives elsewhere; the caller's model is not moved)."""
    dev = get_device(device) if device is not None else model.device
    if dev == model.device:
        return model, dev
    moved = copy.copy(model)
    moved.autoencoder = copy.deepcopy(model.autoencoder).to(dev)
    moved.classifier = copy.deepcopy(model.classifier).to(dev)
    return moved, dev


def _stack(model, slices, name="slices"):
    """Slices as a float32 (N, H, W) stack, checked against the model's input shape."""
    a = np.asarray(slices)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real-valued, got dtype {a.dtype}.")
    single = a.ndim == 2
    if single:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be one slice (H, W) or a stack (N, H, W), got {a.shape}.")
    shape = tuple(model.config["shape"])
    if a.shape[1:] != shape:
        raise ValueError(
            f"{name} are {a.shape[1:]}, the model takes {shape} slices (its dense layer is "
            "sized for them); extract the same slice of a volume on the same grid."
        )
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} hold NaN or infinite values.")
    check_unit_range(a, name)
    return a, single


def _standardise(model, a, dev):
    return _tensor(a, model.config["mean"], model.config["std"], dev)


def _chunks(n, size):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _forward(model, slices, device, batch_size, network):
    """Run ``network`` ("classifier": probabilities, "autoencoder": images) over slices."""
    model = _check_model(model)
    batch_size = check_int("batch_size", batch_size, 1)
    a, single = _stack(model, slices, "slice_or_slices")
    if len(a) == 0:
        raise ValueError("slice_or_slices holds no slice")
    model, dev = _on(model, device)
    net = getattr(model, network).eval()
    out = []
    with torch.no_grad():
        for s in _chunks(len(a), batch_size):
            y = net(_standardise(model, a[s], dev))
            y = torch.sigmoid(y) if network == "classifier" else y[:, 0]
            out.append(to_numpy(y))
    return np.concatenate(out), single


def predict(model, slice_or_slices, *, device=None, batch_size=32):
    """Probability that a slice shows AD or MCI (CDR >= 0.5), from the classifier.

    Parameters
    ----------
    model : Trained
        From :func:`train` or :func:`load_model`.
    slice_or_slices : array_like, shape (H, W) or (N, H, W)
        Slices scaled to [0, 1] (:func:`extract_slice`), on the model's grid (for OASIS-1:
        176 x 208, axial slice 105). The model's stored training normalisation is applied.
    device : None, str or torch.device
        Where to compute (default: where the model is).
    batch_size : int, optional
        Slices per forward pass.

    Returns
    -------
    float or numpy.ndarray of float
        One probability for one slice, an array of N for a stack.
    """
    p, single = _forward(model, slice_or_slices, device, batch_size, "classifier")
    p = p.astype(np.float64)
    return float(p[0]) if single else p


def reconstruct(model, slice_or_slices, *, device=None, batch_size=32):
    """The autoencoder's reconstruction of slices (images in [0, 1], same shape as the input).

    Parameters
    ----------
    model : Trained
    slice_or_slices : array_like, shape (H, W) or (N, H, W)
        Slices scaled to [0, 1], on the model's grid.
    device : None, str or torch.device
    batch_size : int, optional

    Returns
    -------
    numpy.ndarray of float32
    """
    r, single = _forward(model, slice_or_slices, device, batch_size, "autoencoder")
    return r[0] if single else r


def feature_maps(model, slice_, *, layers=None, network="autoencoder", device=None):
    """Activations of the convolution blocks for one slice: the paper's Fig. 3.

    Parameters
    ----------
    model : Trained
    slice_ : array_like, shape (H, W)
        A slice scaled to [0, 1], on the model's grid.
    layers : sequence of str, optional
        Any of ``"conv1"`` ... ``"conv6"`` (encoder blocks 1-3 at full, half and quarter
        resolution; decoder blocks 4-5 at quarter and half resolution, before up-sampling;
        ``conv6`` the output image). Default: all six for the autoencoder, ``conv1``-``conv3``
        for the classifier.
    network : {"autoencoder", "classifier"}, optional
        Whose activations: the autoencoder's, or the fine-tuned classifier's encoder.
    device : None, str or torch.device

    Returns
    -------
    dict of str to numpy.ndarray of float32
        ``{layer: (channels, h, w)}``, after batch normalisation and ReLU.
    """
    model = _check_model(model)
    a, single = _stack(model, slice_, "slice_")
    if not single:
        raise ValueError(f"slice_ must be one 2-D slice, got shape {np.shape(slice_)}.")
    if network not in ("autoencoder", "classifier"):
        raise ValueError(f"network must be 'autoencoder' or 'classifier', got {network!r}.")
    available = LAYERS if network == "autoencoder" else LAYERS[:3]
    if layers is None:
        layers = available
    elif isinstance(layers, str):
        layers = (layers,)
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise ValueError(f"layers {unknown} are not among {list(available)} of the {network}.")
    model, dev = _on(model, device)
    net = (model.autoencoder if network == "autoencoder" else model.classifier).eval()
    taps = {}
    with torch.no_grad():
        net(_standardise(model, a, dev), taps)
    return {name: to_numpy(taps[name][0], np.float32, copy=True) for name in layers}


def occlusion_map(model, slice_, *, patch=16, stride=8, fill=None, units="probability",
                  device=None, batch_size=64):
    """Occlusion sensitivity: how much each region raises the AD probability (Zeiler & Fergus).

    A ``patch`` x ``patch`` square slides over the slice in steps of ``stride``; each
    position is replaced by ``fill`` and the classifier run again. A pixel's value is the
    mean, over the squares that cover it, of (probability of the intact slice - probability
    with the square occluded): positive where the region pushes the decision towards AD,
    negative where it pushes towards healthy.

    Parameters
    ----------
    model : Trained
    slice_ : array_like, shape (H, W)
        A slice scaled to [0, 1], on the model's grid.
    patch : int, optional
        Side of the occluding square, pixels (mm on OASIS-1's 1 mm grid).
    stride : int, optional
        Step between squares, pixels (<= patch, so every pixel is covered).
    fill : float, optional
        Value of the occluded pixels (in the slice's [0, 1] units). Default: the training
        mean, which the network sees as 0 after normalisation.
    units : {"probability", "logit"}, optional
        Measure the change in probability, or in the classifier's logit (log-odds), which
        does not saturate when the model is confident (p near 0 or 1).
    device : None, str or torch.device
    batch_size : int, optional
        Occluded copies per forward pass.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
        In probability units (between -1 and 1) or in logits.
    """
    model = _check_model(model)
    a, single = _stack(model, slice_, "slice_")
    if not single:
        raise ValueError(f"slice_ must be one 2-D slice, got shape {np.shape(slice_)}.")
    h, w = a.shape[1:]
    patch = check_int("patch", patch, 1, type_error=ValueError)
    stride = check_int("stride", stride, 1, type_error=ValueError)
    if patch > min(h, w):
        raise ValueError(f"patch={patch} is larger than the slice {a.shape[1:]}.")
    if stride > patch:
        raise ValueError(f"stride={stride} must not exceed patch={patch} (pixels would be missed).")
    if units not in ("probability", "logit"):
        raise ValueError(f"units must be 'probability' or 'logit', got {units!r}.")
    score = torch.sigmoid if units == "probability" else (lambda logit: logit)
    fill = float(model.config["mean"]) if fill is None else float(fill)
    if not math.isfinite(fill):
        raise ValueError(f"fill must be a finite value (in the slice's [0, 1] units), got {fill}.")
    model, dev = _on(model, device)
    net = model.classifier.eval()

    def starts(n):
        s = list(range(0, n - patch + 1, stride))
        if s[-1] != n - patch:
            s.append(n - patch)
        return s

    boxes = [(i, j) for i in starts(h) for j in starts(w)]
    x = _standardise(model, a, dev)
    fill_std = (fill - model.config["mean"]) / model.config["std"]
    with torch.no_grad():
        p0 = float(score(net(x))[0])
        drops = []
        for s in _chunks(len(boxes), batch_size):
            batch = x.repeat(s.stop - s.start, 1, 1, 1)
            for k, (i, j) in enumerate(boxes[s]):
                batch[k, 0, i:i + patch, j:j + patch] = fill_std
            drops.append(p0 - to_numpy(score(net(batch))))
    drops = np.concatenate(drops)
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for d, (i, j) in zip(drops, boxes):
        total[i:i + patch, j:j + patch] += d
        count[i:i + patch, j:j + patch] += 1
    return (total / count).astype(np.float32)


#: How far below the model's validation PSNR a slice's reconstruction may fall before
#: :func:`familiarity` calls the slice unlike the training data: 6 dB, four times the
#: validation's mean squared error.
FAMILIARITY_MARGIN_DB = 6.0
#: The least contrast (standard deviation over the slice) that :func:`familiarity` accepts,
#: as a fraction of the training slices' (the model's ``std``): an empty or uniform slice
#: reconstructs easily, yet is no brain slice.
FAMILIARITY_MIN_CONTRAST = 0.25


def familiarity(model, slice_or_slices, *, reconstruction=None, device=None, batch_size=32):
    """How well the autoencoder reconstructs slices, against how well it did on validation.

    The autoencoder was trained to reproduce the training slices; a slice it reconstructs much
    worse than the validation slices (noise, another contrast or brightness) is unlike
    anything the classifier saw, and its :func:`predict` probability means little. So is a
    slice with far less contrast than the training slices (empty or uniform), which
    reconstructs easily. PSNR is the training's: ``10 log10(1 / MSE)`` on [0, 1] images. A
    check, not a guarantee: a slice upside down reconstructs about as well as the right way
    up, and slices moved sideways off the model's grid position often pass (the demo model
    on 20 phantom slices: 13 flagged moved 30 px right, 15 moved 30 px left, 0 and 1 moved
    20 px right and left), though the classifier's answers to them move (P at most 0.0002
    at 30 px, up to 0.29 at 20 px).

    Parameters
    ----------
    model : Trained
    slice_or_slices : array_like, shape (H, W) or (N, H, W)
        Slices scaled to [0, 1], on the model's grid.
    reconstruction : array_like, optional
        Their reconstruction by :func:`reconstruct`, when already computed (same shape).
    device : None, str or torch.device
    batch_size : int, optional

    Returns
    -------
    psnr : float or numpy.ndarray of float
        Reconstruction PSNR (dB) of each slice.
    validation_psnr : float
        The validation PSNR (dB) at the autoencoder's selected epoch (NaN when the model's
        history does not hold it).
    familiar : bool or numpy.ndarray of bool
        ``psnr >= validation_psnr - FAMILIARITY_MARGIN_DB`` (not checked when the history
        holds no validation PSNR), and the slice's standard deviation at least
        ``FAMILIARITY_MIN_CONTRAST`` times the training slices'.
    """
    _check_model(model)
    a, single = _stack(model, slice_or_slices, "slice_or_slices")
    if reconstruction is None:
        r = reconstruct(model, a, device=device, batch_size=batch_size)
    else:
        if np.shape(reconstruction) != np.shape(slice_or_slices):
            raise ValueError(f"reconstruction has shape {np.shape(reconstruction)}; the slices "
                             f"have {np.shape(slice_or_slices)}.")
        r = _stack(model, reconstruction, "reconstruction")[0]  # real, finite, in [0, 1]
    mse = np.mean((r.astype(np.float64) - a.astype(np.float64)) ** 2, axis=(1, 2))
    psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-12))
    history = getattr(model, "history", None) or {}
    values = history.get("ae_val_psnr") or []
    epoch = (history.get("best") or {}).get("autoencoder_epoch") or len(values)
    validation = float(values[epoch - 1]) if values and 1 <= epoch <= len(values) else math.nan
    familiar = (psnr >= validation - FAMILIARITY_MARGIN_DB) if math.isfinite(validation) \
        else np.ones(len(psnr), dtype=bool)
    contrast = a.astype(np.float64).std(axis=(1, 2))
    familiar &= contrast >= FAMILIARITY_MIN_CONTRAST * float(model.config["std"])
    if single:
        return float(psnr[0]), validation, bool(familiar[0])
    return psnr, validation, familiar
