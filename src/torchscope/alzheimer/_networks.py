"""The paper's networks in plain torch: a convolutional autoencoder, a classifier on its encoder.

Encoder (section III-B): three blocks of 3x3 convolution, batch normalisation and ReLU, with a
2x2 max-pool after the first and the second. Decoder: two such blocks, each followed by a 2x2
(nearest) up-sampling, and a last 3x3 convolution to one channel with a sigmoid, so the output
is an image in [0, 1] like the input slices. Classifier (section III-C): the same encoder,
flatten, dense 256 (ReLU, dropout 0.2), dense 128 (ReLU), dense 1 (a logit; the sigmoid is
applied by :func:`torchscope.alzheimer.predict`).
"""

import torch
from torch import nn

#: Default channel widths of the three encoder blocks. The last is the latent depth: the
#: classifier's first dense layer has ``widths[2] * H/4 * W/4 * 256`` weights.
WIDTHS = (16, 32, 8)
DENSE = (256, 128)
DROPOUT = 0.2
#: Names of the six convolution blocks, in forward order (the paper's Fig. 3 layers).
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6")


def _tap(taps, name, x):
    """Record activation ``x`` under ``name`` when ``taps`` is a dict (for feature maps)."""
    if taps is not None:
        taps[name] = x
    return x


def _block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Three conv blocks; max-pool after the first two. (N, 1, H, W) -> (N, c3, H/4, W/4)."""

    def __init__(self, widths=WIDTHS):
        super().__init__()
        c1, c2, c3 = widths
        self.conv1 = _block(1, c1)
        self.conv2 = _block(c1, c2)
        self.conv3 = _block(c2, c3)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x, taps=None):
        x = _tap(taps, "conv1", self.conv1(x))
        x = _tap(taps, "conv2", self.conv2(self.pool(x)))
        return _tap(taps, "conv3", self.conv3(self.pool(x)))


class Decoder(nn.Module):
    """Two conv blocks, each followed by 2x2 up-sampling, then a 3x3 conv and a sigmoid."""

    def __init__(self, widths=WIDTHS):
        super().__init__()
        c1, c2, c3 = widths
        self.conv4 = _block(c3, c2)
        self.conv5 = _block(c2, c1)
        self.conv6 = nn.Conv2d(c1, 1, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, z, taps=None):
        x = _tap(taps, "conv4", self.conv4(z))
        x = _tap(taps, "conv5", self.conv5(self.up(x)))
        return _tap(taps, "conv6", torch.sigmoid(self.conv6(self.up(x))))


class Autoencoder(nn.Module):
    """Encoder + decoder; reconstructs a standardised slice as an image in [0, 1]."""

    def __init__(self, widths=WIDTHS):
        super().__init__()
        self.encoder = Encoder(widths)
        self.decoder = Decoder(widths)

    def forward(self, x, taps=None):
        return self.decoder(self.encoder(x, taps), taps)


class SeededDropout(nn.Module):
    """Dropout that draws from its own ``torch.Generator`` (set ``.generator``), so that a
    training run is reproducible without touching torch's global random state."""

    def __init__(self, p):
        super().__init__()
        self.p = float(p)
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device,
                          dtype=x.dtype) >= self.p
        return x * keep / (1 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


class Classifier(nn.Module):
    """The encoder, flatten, dense 256 (ReLU, dropout), dense 128 (ReLU), dense 1 (logit)."""

    def __init__(self, shape, widths=WIDTHS, dense=DENSE, dropout=DROPOUT):
        super().__init__()
        h, w = shape
        self.encoder = Encoder(widths)
        features = widths[2] * (h // 4) * (w // 4)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, dense[0]), nn.ReLU(inplace=True), SeededDropout(dropout),
            nn.Linear(dense[0], dense[1]), nn.ReLU(inplace=True),
            nn.Linear(dense[1], 1),
        )

    def forward(self, x, taps=None):
        return self.head(self.encoder(x, taps))[:, 0]


def build(config):
    """Fresh (untrained) autoencoder and classifier for a model ``config`` dict."""
    widths = tuple(config["widths"])
    ae = Autoencoder(widths)
    clf = Classifier(tuple(config["shape"]), widths, tuple(config["dense"]), config["dropout"])
    return ae, clf


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
