"""Trained weights on disk: safetensors files read with clear errors (no pickle)."""

import os


def read_weights(path, what, *, tensors=True):
    """The metadata and tensors of a safetensors weight file.

    Parameters
    ----------
    path : str or path-like
        The ``.safetensors`` file.
    what : str
        What the file should hold (e.g. ``"torchscope MWCNN"``), for the error messages.
    tensors : bool
        Also read the tensors (False: only the metadata, which is cheap).

    Returns
    -------
    metadata : dict of str to str
        The file's metadata (empty if it has none).
    tensors : dict of str to torch.Tensor (on the CPU), or None
        Every tensor of the file by name, or None when ``tensors=False``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        ``path`` is a folder, or the file is not a safetensors file (empty, truncated, another
        format), naming it.
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
    """``make()``, the network a weight file's metadata describes, with errors naming the file.

    Parameters
    ----------
    make : callable
        Takes no arguments and builds the network from the metadata (typically a lambda that
        reads the widths and depths from the dict :func:`read_weights` returned).
    path : str or path-like
        The weight file, for the error message.
    what : str
        What the file should hold (e.g. ``"torchscope MWCNN"``), for the error message.

    Returns
    -------
    object
        What ``make()`` returns: the network (a ``torch.nn.Module``).

    Raises
    ------
    ValueError
        If ``make()`` raises ``KeyError``, ``TypeError``, ``ValueError`` or ``RuntimeError``:
        the description is incomplete or invalid (a missing key, a width that is not a number,
        a negative width...). The message names ``path`` and the original error.
    """
    try:
        return make()
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"path={os.fspath(path)!r}: the {what} its metadata describes cannot "
                         f"be built ({type(err).__name__}: {err}).") from None


def load_weights(net, state, path, what):
    """``net.load_state_dict(state)``, strict, with an error naming the file on a mismatch.

    Parameters
    ----------
    net : torch.nn.Module
        The network, as :func:`build_network` returned it; the tensors are copied into its
        parameters and buffers in place.
    state : dict of str to torch.Tensor
        The tensors :func:`read_weights` returned.
    path : str or path-like
        The weight file, for the error message.
    what : str
        What the file should hold (e.g. ``"torchscope MWCNN"``), for the error message.

    Raises
    ------
    ValueError
        If the tensors' names or shapes do not match the network (missing, unexpected or
        mis-shaped tensors, as torch lists them, cut to 300 characters). The message names
        ``path``.
    """
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:  # torch's message lists the missing, unexpected, mis-shaped
        detail = str(err).split("\n\t", 1)[-1].strip()
        raise ValueError(f"path={os.fspath(path)!r}: its tensors do not fit the {what} its "
                         f"metadata describes ({detail[:300]}).") from None
