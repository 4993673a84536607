"""Trained weights on disk: safetensors files read with clear errors (no pickle)."""

import os


def read_weights(path, what, *, tensors=True):
    """The metadata and tensors of a safetensors weight file.

    Parameters
    ----------
    path : str or path-like
    what : str
        What the file should hold (e.g. ``"torchscope MWCNN"``), for the error messages.
    tensors : bool
        Also read the tensors (False: only the metadata, which is cheap).

    Returns
    -------
    metadata : dict of str
    tensors : dict of str to torch.Tensor (on the CPU), or None

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a safetensors file (empty, truncated, another format), naming it.
    """
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path={path!r} is a folder, not a {what} weight file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path={path!r}: no such file (a {what} weight file).")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            state = {name: f.get_tensor(name) for name in f.keys()} if tensors else None  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        raise ValueError(f"path={path!r} is not a safetensors file ({what} weights "
                         f"expected): {err}") from None
    return metadata, state


def build_network(make, path, what):
    """``make()``, the network a weight file's metadata describes; a ValueError naming ``path``
    when that description is incomplete or invalid (a missing key, a negative width...)."""
    try:
        return make()
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"path={os.fspath(path)!r}: the {what} its metadata describes cannot "
                         f"be built ({type(err).__name__}: {err}).") from None


def load_weights(net, state, path, what):
    """``net.load_state_dict(state)``, strict; a ValueError naming ``path`` when the tensors'
    names or shapes do not match the network the file's metadata describes."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:  # torch's message lists the missing, unexpected, mis-shaped
        detail = str(err).split("\n\t", 1)[-1].strip()
        raise ValueError(f"path={os.fspath(path)!r}: its tensors do not fit the {what} its "
                         f"metadata describes ({detail[:300]}).") from None
