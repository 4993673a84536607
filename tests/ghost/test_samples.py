"""The paper's test objects: geometry measured on the rendered maps (components, teeth, gap)."""

import itertools

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import euler_number, regionprops

from torchscope.ghost import SAMPLE_OBJECTS, sample_object

NAMES = ("cas", "gear", "cylinder")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [32, 64, 128])
def test_transmission_maps(name, n):
    obj = sample_object(name, n)
    assert obj.shape == (n, n) and obj.dtype == np.float32
    assert obj.min() == 0.0 and obj.max() == 1.0  # opaque metal and open air both present
    np.testing.assert_array_equal(obj, sample_object(name, n))  # deterministic
    # area coverage: the mean transmission hardly depends on the sampling
    assert abs(obj.mean() - sample_object(name, 256).mean()) < 0.02


def test_spacing_is_the_field_over_n():
    assert set(SAMPLE_OBJECTS) == set(NAMES)
    for name in NAMES:
        fov = SAMPLE_OBJECTS[name].field_of_view
        np.testing.assert_array_equal(sample_object(name, 64, spacing=fov / 64),
                                      sample_object(name, 64))
    assert SAMPLE_OBJECTS["cylinder"].field_of_view / 64 == 10.0  # the paper's Au mask pixel


def letters(obj):
    """Open components, left to right."""
    lab, count = ndimage.label(obj > 0.5)
    props = sorted(regionprops(lab), key=lambda p: p.bbox[1])
    return props, count


@pytest.mark.parametrize("n", [64, 128])
def test_cas_has_three_stencil_letters(n):
    obj = sample_object("cas", n)
    props, count = letters(obj)
    assert count == 3
    boxes = [p.bbox for p in props]  # (row0, col0, row1, col1)
    assert all(a[3] <= b[1] for a, b in itertools.pairwise(boxes))  # side by side, no overlap
    heights = [b[2] - b[0] for b in boxes]
    assert max(heights) - min(heights) <= 2
    assert 0.3 * n < heights[0] < 0.5 * n  # 1.9 mm in a 4.8 mm field
    # a stencil is cut from one plate: the opaque part is connected, so no letter has a hole
    _, plates = ndimage.label(obj <= 0.5, structure=np.ones((3, 3)))
    assert plates == 1
    assert [euler_number(p.image, connectivity=2) for p in props] == [1, 1, 1]
    c, a, s = (p.image for p in props)
    # C: open to the right (the middle of its right side is plate), closed on the left
    mid = c.shape[0] // 2
    assert not c[mid, -1] and c[mid, : c.shape[1] // 3].any()
    # A: the inner island (plate inside the letter's convex hull, above the bar) exists
    hull = regionprops(a.astype(int))[0].image_convex
    assert (hull & ~a)[: a.shape[0] // 2].sum() > 0
    # S: a horizontal line through its middle crosses the stroke once (the diagonal spine)
    row = s[s.shape[0] // 2]
    assert np.count_nonzero(np.diff(row.astype(int)) == 1) + row[0] == 1


def count_runs(values):
    """Number of runs of True in a cyclic sequence."""
    values = np.asarray(values, dtype=bool)
    if values.all():
        return 1
    starts = values & ~np.roll(values, 1)
    return int(starts.sum())


@pytest.mark.parametrize("n", [64, 128])
def test_gear_has_14_teeth_and_is_1_5_mm(n):
    obj = sample_object("gear", n)
    spacing = SAMPLE_OBJECTS["gear"].field_of_view / n
    metal = obj < 0.5
    # the gear's outer diameter, from its pixels: about 1.5 mm
    rows = np.flatnonzero(metal.any(1))
    cols = np.flatnonzero(metal.any(0))
    for extent in (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1):
        assert abs(extent * spacing - 1500) <= 2 * spacing
    # teeth: metal runs along a circle between the root and the tip (found from the image)
    cy, cx = ndimage.center_of_mass(metal)
    yy, xx = np.indices(obj.shape)
    rho = np.hypot(yy - cy, xx - cx)
    r_tip = rho[metal].max()
    r_full = min(rho[~metal & (rho > 0.5 * r_tip)])  # first open pixel outside the bore
    radius = 0.5 * (r_tip + r_full)
    theta = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    ring = ndimage.map_coordinates(obj, [cy - radius * np.sin(theta), cx + radius * np.cos(theta)],
                                   order=1)
    assert count_runs(ring < 0.5) == 14
    # a bore in the middle
    assert obj[round(cy), round(cx)] == 1.0


@pytest.mark.parametrize(("n", "spacing", "gap_pixels"),
                         [(64, None, 1.0), (128, None, 2.0), (32, None, 0.5), (64, 5.0, 2.0)])
def test_cylinder_gap_is_10_micrometres(n, spacing, gap_pixels):
    obj = sample_object("cylinder", n, spacing=spacing)
    pixel = spacing or SAMPLE_OBJECTS["cylinder"].field_of_view / n
    assert gap_pixels == 10.0 / pixel
    row = obj[n // 2]
    opaque = ndimage.label(row < 0.25)[0]
    column, disc = (np.flatnonzero(opaque == k) for k in (1, 2))
    assert opaque.max() == 2  # the column, then the half-disc
    # the open length between the middles of the two solids is the gap
    open_length = row[column.mean().astype(int) + 1: disc.mean().astype(int)].sum()
    assert open_length == pytest.approx(gap_pixels, abs=1 / 8)
    if gap_pixels == 1.0:  # aligned on the pixel grid: one fully open column between solids
        assert row[column[-1] + 1] == 1.0 and column[-1] + 2 == disc[0]


def test_cylinder_column_spans_the_field_and_disc_is_half_round():
    obj = sample_object("cylinder", 128)
    pixel = SAMPLE_OBJECTS["cylinder"].field_of_view / 128
    lab, count = ndimage.label(obj < 0.5)
    assert count == 2
    column, disc = sorted(regionprops(lab), key=lambda p: p.bbox[1])
    assert column.bbox[0] == 0 and column.bbox[2] == 128  # top to bottom
    height = (disc.bbox[2] - disc.bbox[0]) * pixel  # the flat face: a diameter
    width = (disc.bbox[3] - disc.bbox[1]) * pixel  # the radius
    assert height == pytest.approx(2 * width, rel=0.05)
    area = (1 - obj)[disc.slice].sum() * pixel**2  # opaque area of the half disc
    assert area == pytest.approx(np.pi * (height / 2) ** 2 / 2, rel=0.03)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "moon"}, "name='moon'"),
    ({"name": "gear", "n": 4}, "n=4"),
    ({"name": "gear", "n": 64.0}, "n=64.0"),
    ({"name": "gear", "spacing": 0}, "spacing=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_object(**kwargs)
