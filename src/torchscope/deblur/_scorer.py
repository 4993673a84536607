"""The region-scoring network: a ResNet34 with strided convolutions instead of pooling.

Yang, Wu and Sun (``papers/001``) fine-tune a ResNet34 whose pooling layers are replaced by
strided convolutions (fewer translation-invariant layers: neighbouring windows can deserve
different labels), ending in one output, trained with binary cross-entropy. Here, in plain
torch:

- stem: 7 x 7 convolution, stride 2; then a 3 x 3 convolution with stride 2 where ResNet has
  its max-pooling;
- the four ResNet34 stages of 3, 4, 6 and 3 basic blocks (widths ``w, 2w, 4w, 8w``; the
  first block of stages 2 to 4 has stride 2);
- the head: the final feature map (8 x 8 for 228 x 228 input) flattened into one linear
  layer and one logit, where ResNet has global average pooling.

``width=64`` is ResNet34's width (21 M parameters); the shipped network is narrower (see its
model card in ``weights/``), trained from scratch on this project's synthetic set
(:mod:`torchscope.deblur._dataset`), since ImageNet weights cannot be downloaded here.

Input: grayscale patches in [0, 1], shape (N, 1, s, s) with ``s`` the ``patch_size`` the
network was built for.
"""

import functools
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "region_scorer.safetensors"
TRAIN_SCRIPT = "scripts/train_deblur_scorer.py"
FORMAT = "torchscope.deblur.region_scorer/1"
STAGES = (3, 4, 6, 3)


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with batch norm and a residual connection."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(out + skip)


def _out_size(n, kernel, stride, pad):
    return (n + 2 * pad - kernel) // stride + 1


def feature_size(patch_size):
    """Side of the last feature map for square input of ``patch_size`` pixels."""
    n = _out_size(patch_size, 7, 2, 3)  # stem
    n = _out_size(n, 3, 2, 1)           # the strided convolution in place of max-pooling
    for _ in STAGES[1:]:
        n = _out_size(n, 3, 2, 1)
    return n


class RegionScorer(nn.Module):
    """ResNet34 topology, strided convolutions instead of pooling, one logit.

    Parameters
    ----------
    width : int
        Channels of the first stage (ResNet34: 64).
    patch_size : int
        Side of the square input patches (the paper: 228).
    """

    def __init__(self, width=16, patch_size=228):
        super().__init__()
        self.width, self.patch_size = int(width), int(patch_size)
        w = self.width
        self.stem = nn.Sequential(
            nn.Conv2d(1, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        )
        stages, c_in = [], w
        for i, blocks in enumerate(STAGES):
            c_out = w * 2 ** i
            layers = [BasicBlock(c_in, c_out, 1 if i == 0 else 2)]
            layers += [BasicBlock(c_out, c_out, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        side = feature_size(self.patch_size)
        self.head = nn.Linear(c_in * side * side, 1)

    def forward(self, x):
        """Logits (N,) for patches (N, 1, s, s) in [0, 1]."""
        if x.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(f"the scorer takes {self.patch_size} x {self.patch_size} patches, "
                             f"got {tuple(x.shape[-2:])}.")
        x = self.stages(self.stem((x - 0.5) / 0.25))
        return self.head(x.flatten(1))[:, 0]


def save_weights(model, path, **metadata):
    """Write a scorer to ``.safetensors`` with its architecture in the metadata."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "width": str(model.width), "patch_size": str(model.patch_size)}
    meta.update({k: str(v) for k, v in metadata.items()})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.fspath(path), metadata=meta)


def default_weights():
    """Path of the shipped weights."""
    return WEIGHTS_DIR / WEIGHTS_FILE


def load_scorer(path=None, *, device=None):
    """The scorer network from a ``.safetensors`` file (default: the shipped one), in eval mode.

    Raises
    ------
    FileNotFoundError
        When the file does not exist, naming it and the script that builds it.
    ValueError
        A file that is not a region-scorer file (not safetensors, truncated, another format),
        or whose tensors do not fit the network its metadata describes; the message names it.
    """
    from torchscope.backend import build_network, get_device, load_weights, read_weights

    shipped = path is None
    path = Path(default_weights() if shipped else os.fspath(path))
    if not path.exists():
        if shipped:
            raise FileNotFoundError(
                f"the region scorer's weights {path} are not there: this installation ships no "
                f"trained network yet. Build them with `python {TRAIN_SCRIPT}` (see "
                "docs/deblur.md), pass weights= a trained .safetensors file, or use "
                "scorer='edges' or 'variance'.")
        raise FileNotFoundError(f"weights file {path} does not exist; {TRAIN_SCRIPT} writes "
                                "one.")
    meta, state = read_weights(path, "region scorer")
    if meta.get("format") != FORMAT:
        raise ValueError(f"path={str(path)!r} is not a region-scorer file (metadata format "
                         f"{meta.get('format')!r}, expected {FORMAT!r}).")
    model = build_network(lambda: RegionScorer(width=int(meta["width"]),
                                               patch_size=int(meta["patch_size"])),
                          path, "region scorer")
    load_weights(model, state, path, "region scorer")
    return model.to(get_device(device)).eval()


def sha256(path):
    """Hex SHA-256 of a file (for model cards)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _cached_scorer(path, stamp, device):
    # channels-last once, for scoring (see cnn_scores)
    return load_scorer(path, device=device).to(memory_format=torch.channels_last)


def _scorer_for(weights, device):
    """:func:`load_scorer`, read once per file version and device (networks are not changed)."""
    path = Path(default_weights() if weights is None else os.fspath(weights))
    try:
        st = path.stat()
    except OSError:
        return load_scorer(weights, device=device)  # the error that names what is missing
    return _cached_scorer(os.fspath(path), (st.st_mtime_ns, st.st_size), device)


def cnn_scores(gray, boxes, *, weights=None, device=None, batch_size=None):
    """Probabilities of the scorer for the square ``boxes`` of a [0, 1] grayscale image.

    The network runs in channels-last layout, in batches of 8 windows on the CPU (32
    elsewhere): on one CPU thread that scores a 480 x 480 image's 169 windows in about 0.8 of
    the time of contiguous batches of 32, with the same probabilities to float32 rounding."""
    from torchscope.backend import get_device, to_numpy, to_tensor

    dev = get_device(device)
    model = _scorer_for(weights, dev)
    if batch_size is None:
        batch_size = 8 if dev.type == "cpu" else 32
    sizes = set(boxes[:, 2].tolist()) | set(boxes[:, 3].tolist())
    if sizes != {model.patch_size}:
        raise ValueError(f"the cnn scorer was trained on {model.patch_size} x "
                         f"{model.patch_size} regions; use size={model.patch_size} or another "
                         "scorer.")
    image = to_tensor(np.ascontiguousarray(gray, dtype=np.float32), device=dev)
    s = model.patch_size
    out = []
    with torch.inference_mode():
        for start in range(0, len(boxes), batch_size):
            chunk = boxes[start:start + batch_size]
            patches = torch.stack([image[r:r + s, c:c + s] for r, c, _, _ in chunk])[:, None]
            patches = patches.contiguous(memory_format=torch.channels_last)
            out.append(torch.sigmoid(model(patches)))
    return to_numpy(torch.cat(out)).astype(np.float64)  # one transfer from the device
