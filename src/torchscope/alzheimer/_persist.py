"""Saving and loading trained models: one safetensors file with the JSON config in its header."""

import json
import math
from pathlib import Path

from torchscope.alzheimer import _networks
from torchscope.alzheimer._train import Trained

FORMAT = "torchscope.alzheimer/1"
_DEMO = Path(__file__).resolve().parent / "weights" / "demo_phantom.safetensors"


def _json(value):
    """Standard JSON (the safetensors header is read by other languages too): a non-finite
    number, such as the validation loss of a classifier that never ran an epoch, as null."""
    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(value), allow_nan=False)


def save_model(path, trained, *, dtype="float32"):
    """Write a trained model to a ``.safetensors`` file (no pickle).

    The tensors of both networks (``autoencoder.*``, ``classifier.*``) go in the file's body;
    the JSON ``config`` (architecture, normalisation, recipe, training subject ids), the
    ``history`` and the nWBV + age ``baseline`` go in its header metadata.

    Parameters
    ----------
    path : str or path-like
        Usually ending in ``.safetensors``.
    trained : Trained
    dtype : {"float32", "float16"}, optional
        Storage type of the floating-point tensors. ``"float16"`` halves the file; the model
        read back (in float32) then differs from ``trained`` by float16 rounding.

    Returns
    -------
    pathlib.Path
    """
    import torch
    from safetensors.torch import save_file

    if not isinstance(trained, Trained):
        raise TypeError(f"trained must be a Trained model, got {type(trained).__name__}.")
    storage = {"float32": torch.float32, "float16": torch.float16}.get(dtype)
    if storage is None:
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}.")
    tensors = {}
    for prefix, net in (("autoencoder", trained.autoencoder), ("classifier", trained.classifier)):
        for key, value in net.state_dict().items():
            value = value.detach().cpu()
            if value.is_floating_point():
                value = value.to(storage)
            tensors[f"{prefix}.{key}"] = value.contiguous()
    metadata = {
        "format": FORMAT,
        "dtype": dtype,
        "config": _json(trained.config),
        "history": _json(trained.history),
        "baseline": _json(trained.baseline),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_model(path, *, device=None):
    """Read a model written by :func:`save_model` (safetensors, no pickle).

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file from :func:`save_model`, e.g. :func:`demo_model_path`.
    device : None, str or torch.device, optional
        Where to put the networks (``None``: CUDA, then MPS, then the CPU).

    Returns
    -------
    Trained
        In eval mode; ``split`` is None.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        A file that is not a torchscope.alzheimer model (not safetensors, truncated, another
        format), or whose configuration or tensors are incomplete; the message names the file.
    """
    from torchscope.backend import build_network, get_device, load_weights, read_weights

    metadata, tensors = read_weights(path, "torchscope.alzheimer model")
    path = Path(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"path={str(path)!r} is not a torchscope.alzheimer model (format "
            f"{metadata.get('format')!r}, expected {FORMAT!r})."
        )
    def make():
        config = json.loads(metadata["config"])
        history = json.loads(metadata.get("history", "{}"))
        baseline = json.loads(metadata.get("baseline", "null"))
        return config, history, baseline, _networks.build(config)

    config, history, baseline, (ae, clf) = build_network(make, path, "torchscope.alzheimer model")
    for prefix, net in (("autoencoder", ae), ("classifier", clf)):
        state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        load_weights(net, state, path, f"torchscope.alzheimer model's {prefix}")
    dev = get_device(device)
    ae.to(dev).eval()
    clf.to(dev).eval()
    return Trained(autoencoder=ae, classifier=clf, history=history, config=config,
                   baseline=baseline, split=None)


def demo_model_path():
    """Path of the shipped demo model (trained on the phantom cohort; not a diagnostic device).

    See ``demo_phantom.md`` beside it (the model card) and ``scripts/train_alzheimer_demo.py``,
    which rebuilds it.

    Returns
    -------
    pathlib.Path
    """
    if not _DEMO.is_file():
        raise FileNotFoundError(
            f"the demo model {_DEMO} is missing; rebuild it with scripts/train_alzheimer_demo.py."
        )
    return _DEMO
