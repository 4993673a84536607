"""The paper's test objects as transmission maps, rendered by code (nothing is downloaded).

Each object is drawn in micrometres and sampled on an ``n x n`` grid: every pixel holds the
fraction of its area that transmits (8 x 8 sub-samples per pixel, so edges are anti-aliased to
1/64). 1 is open (the x-rays pass), 0 is opaque metal: the paper's CNR counts the pixels of
transmission 1 as the object (``G_1``) and those of transmission 0 as the background.

The field of view of each object is an assumption where the paper gives no number: see
:data:`SAMPLE_OBJECTS`. The pixel size is ``field_of_view / n`` unless ``spacing`` is given.
"""

import dataclasses
import math
import numbers

import numpy as np

#: Sub-samples per pixel along each axis (area coverage to 1/64).
SUPERSAMPLING = 8


@dataclasses.dataclass(frozen=True)
class SampleInfo:
    """What :func:`sample_object` draws, and its default field of view.

    Attributes
    ----------
    title : str
    field_of_view : float
        Side of the square field in µm; the default pixel size is ``field_of_view / n``.
    description : str
        The object and where its sizes come from.
    """

    title: str
    field_of_view: float
    description: str


SAMPLE_OBJECTS = {
    "cas": SampleInfo(
        "CAS stencil",
        4800.0,
        "The letters 'CAS' cut through a 5 mm stainless-steel plate (Fig. 2(a), 3(a)): open "
        "letters in an opaque plate. Field: the Cu mask's 32 x 150 µm = 4.8 mm (so 75 µm pixels "
        "at n=64, the mask's 150 µm at n=32). Letters 1.9 mm high with 0.3 mm strokes (assumed); "
        "the inner island of the 'A' hangs on a 0.15 mm bridge through its apex, as a stencil "
        "must.",
    ),
    "gear": SampleInfo(
        "14-tooth gear",
        1920.0,
        "A metal gear with 14 teeth, about 1.5 mm in diameter (Fig. 3(e)): opaque gear with a "
        "0.4 mm bore, open around it. Tip diameter 1.5 mm, root diameter 1.2 mm (assumed); field "
        "1.92 mm (assumed; 30 µm pixels at n=64).",
    ),
    "cylinder": SampleInfo(
        "semi-cylinder and column",
        640.0,
        "A gold semi-cylinder glued to a rectangular column, the 0.64 x 0.64 mm exposed area of "
        "Fig. 4 (the Au mask: 64 x 10 µm, so 10 µm pixels at n=64). Seen along the cylinder "
        "axis: a half-disc of radius 300 µm whose flat face is 10 µm from a 150 µm wide column "
        "spanning the field; both opaque, the gap open. At n=64 the gap is exactly one pixel "
        "column.",
    ),
}


# ---------------------------------------------------------------------------- geometry
def _segment_distance(y, x, p0, p1):
    """Distance from points (y, x) to the segment p0-p1 (points as (y, x) in µm)."""
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((y - y0) * dy + (x - x0) * dx) / (dy * dy + dx * dx), 0.0, 1.0)
    return np.hypot(y - (y0 + t * dy), x - (x0 + t * dx))


def _arc_distance(y, x, centre, radius, start, stop):
    """Distance to a circular arc from angle ``start`` to ``stop`` (degrees, counter-clockwise
    as seen on screen: 0 points right, 90 up, with y growing downwards)."""
    cy, cx = centre
    phi = np.degrees(np.arctan2(-(y - cy), x - cx))
    inside = np.mod(phi - start, 360.0) <= (stop - start)
    on_circle = np.abs(np.hypot(y - cy, x - cx) - radius)
    ends = [(cy - radius * math.sin(math.radians(a)), cx + radius * math.cos(math.radians(a)))
            for a in (start, stop)]
    to_ends = np.minimum(*(np.hypot(y - ey, x - ex) for ey, ex in ends))
    return np.where(inside, on_circle, to_ends)


def _strokes(y, x, strokes, width):
    """True where (y, x) is within ``width / 2`` of any stroke."""
    out = np.zeros(y.shape, dtype=bool)
    for kind, *args in strokes:
        dist = _segment_distance(y, x, *args) if kind == "line" else _arc_distance(y, x, *args)
        out |= dist <= width / 2
    return out


# Letters LETTER_H µm high with strokes LETTER_S wide (round caps); widths per letter.
LETTER_WIDTH = {"C": 1200.0, "A": 1500.0, "S": 1150.0}
LETTER_H, LETTER_S, LETTER_GAP, BRIDGE = 1900.0, 300.0, 300.0, 150.0
LETTER_BAR = 0.66  # height of the bar of the "A", as a fraction of the letter height


def _letter_strokes(letter, top, left):
    w, h, s = LETTER_WIDTH[letter], LETTER_H, LETTER_S
    if letter == "C":  # two half-round ends joined by a straight back; opening on the right
        r = w / 2 - s / 2
        return [
            ("arc", (top + w / 2, left + w / 2), r, 30.0, 180.0),
            ("line", (top + w / 2, left + s / 2), (top + h - w / 2, left + s / 2)),
            ("arc", (top + h - w / 2, left + w / 2), r, 180.0, 330.0),
        ]
    if letter == "A":
        apex = (top + s / 2, left + w / 2)
        bar = top + LETTER_BAR * h
        slope = (w / 2 - s / 2) / (h - s)  # half-width gained per unit of height
        half = slope * (bar - apex[0])
        return [
            ("line", apex, (top + h - s / 2, left + s / 2)),
            ("line", apex, (top + h - s / 2, left + w - s / 2)),
            ("line", (bar, left + w / 2 - half), (bar, left + w / 2 + half)),
        ]
    if letter == "S":  # two circles of radius q stacked; the strokes meet in the middle
        q = (h - s) / 4
        upper, lower = (top + s / 2 + q, left + w / 2), (top + s / 2 + 3 * q, left + w / 2)
        return [("arc", upper, q, 30.0, 270.0), ("arc", lower, q, -150.0, 90.0)]
    raise ValueError(letter)


def _cas(y, x, fov):
    top = (fov - LETTER_H) / 2
    left = (fov - sum(LETTER_WIDTH.values()) - 2 * LETTER_GAP) / 2
    out = np.zeros(y.shape, dtype=bool)
    for letter, width in LETTER_WIDTH.items():
        box = (x >= left) & (x <= left + width) & (y >= top) & (y <= top + LETTER_H)
        yb, xb = y[box], x[box]
        shape = _strokes(yb, xb, _letter_strokes(letter, top, left), LETTER_S)
        if letter == "A":  # the stencil bridge: plate through the apex, down to the island
            bar = top + LETTER_BAR * LETTER_H
            shape &= ~((np.abs(xb - (left + width / 2)) < BRIDGE / 2) & (yb < bar))
        out[box] = shape
        left += width + LETTER_GAP
    return out  # open where the letters are


GEAR_TEETH, GEAR_TIP, GEAR_ROOT, GEAR_BORE = 14, 750.0, 600.0, 200.0


def _gear(y, x, fov):
    cy = cx = fov / 2
    rho = np.hypot(y - cy, x - cx)
    theta = np.arctan2(-(y - cy), x - cx)
    # trapezoidal teeth: position within a tooth period in [0, 1), tooth centred on 0.5
    phase = np.mod(theta * GEAR_TEETH / (2 * np.pi), 1.0)
    # top land 0.30 of a period, flanks 0.12 each, root 0.46
    rise = np.clip((0.5 - np.abs(phase - 0.5) - 0.23) / 0.12, 0.0, 1.0)
    radius = GEAR_ROOT + (GEAR_TIP - GEAR_ROOT) * rise
    metal = (rho <= radius) & (rho > GEAR_BORE)
    return ~metal


COLUMN_LEFT, COLUMN_WIDTH, GAP, HALF_DISC_RADIUS = 100.0, 150.0, 10.0, 300.0


def _cylinder(y, x, fov):
    face = COLUMN_LEFT + COLUMN_WIDTH + GAP  # the flat face of the semi-cylinder
    column = (x >= COLUMN_LEFT) & (x < COLUMN_LEFT + COLUMN_WIDTH)
    half_disc = (x >= face) & (np.hypot(y - fov / 2, x - face) < HALF_DISC_RADIUS)
    return ~(column | half_disc)


_DRAW = {"cas": _cas, "gear": _gear, "cylinder": _cylinder}


# ------------------------------------------------------------------------------- public
def sample_object(name, n=64, *, spacing=None):
    """One of the paper's test objects as an ``n x n`` transmission map.

    Parameters
    ----------
    name : {"cas", "gear", "cylinder"}
        ``"cas"``: the stencilled letters "CAS" of Fig. 2(a) (open letters in a steel plate).
        ``"gear"``: the metal gear with 14 teeth, about 1.5 mm across, of Fig. 3(e).
        ``"cylinder"``: the gold semi-cylinder beside a rectangular column with a 10 µm gap,
        of Fig. 4. Sizes and fields of view: :data:`SAMPLE_OBJECTS`.
    n : int, optional
        Pixels per side (>= 8; 64 is the paper's Au mask, 32 its Cu mask).
    spacing : float, optional
        Pixel size in µm. Default: the object's field of view divided by ``n``: 75 µm
        (``"cas"``), 30 µm (``"gear"``) and 10 µm (``"cylinder"``, so its 10 µm gap is one
        pixel) at ``n=64``. The object stays centred; a smaller field crops it.

    Returns
    -------
    numpy.ndarray of float32, shape (n, n)
        Transmission in [0, 1]: 1 open, 0 opaque; edge pixels hold the open fraction of their
        area.
    """
    if name not in SAMPLE_OBJECTS:
        raise ValueError(f"name={name!r}; accepted: {tuple(SAMPLE_OBJECTS)}.")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 8:
        raise ValueError(f"n={n!r}: expected an integer number of pixels >= 8.")
    n = int(n)
    fov = SAMPLE_OBJECTS[name].field_of_view
    if spacing is None:
        spacing = fov / n
    elif (isinstance(spacing, bool) or not isinstance(spacing, numbers.Real)
          or not 0 < spacing < math.inf):
        raise ValueError(f"spacing={spacing!r}: expected a pixel size in µm > 0.")
    spacing = float(spacing)
    ss = SUPERSAMPLING
    # sub-sample centres in µm, in the object's frame (its field centred on ours)
    offset = (fov - n * spacing) / 2
    coords = offset + (np.arange(n * ss) + 0.5) * (spacing / ss)
    y, x = np.meshgrid(coords, coords, indexing="ij")
    fine = _DRAW[name](y, x, fov).astype(np.float32)
    return fine.reshape(n, ss, n, ss).mean(axis=(1, 3))
