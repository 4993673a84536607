"""A synthetic OASIS-like cohort from the MNI152 T1 template that nilearn ships (no download).

The model, in 3-D on OASIS-1's 176 x 208 x 176 grid at 1 mm:

Anatomy
    nilearn's MNI152 2009a T1 template (brain-extracted) and its grey/white-matter
    probability maps, cropped/padded so the whole brain fits and axial slice 105 (the
    paper's 106th) lies at MNI z = +12 mm, through the bodies of the lateral ventricles.
    Derived once: the ventricles (the inner CSF space: the largest component plus the
    temporal horns), the exterior CSF (sulci and the space outside the brain), and the
    hippocampi (a capsule along each hippocampal axis, intersected with grey matter), with
    distance maps to their surfaces.
Atrophy (both classes)
    Three levels per subject, for the ventricles, the cortex and the hippocampi. Ageing:
    ``a_age = 0.3 (age - 60) / 36 + N(0, 0.05)`` (>= 0) everywhere. Disease: ``severity``,
    drawn from ``severity`` for the AD class (0 for controls), added in full to the ventricles
    and hippocampi and at ``CORTEX_SHARE`` (0.3) to the cortex. Each subject also has its own
    cortical atrophy, uniform in [0, ``CORTEX_SPREAD``] (1.0) whatever the label: elderly
    brains differ widely in sulcal widening, so whole-brain volume (nWBV) tells the classes
    apart only in part, as in real cohorts, while the enlarged ventricles (and hippocampi)
    carry the disease. Tissue within ``6 a`` mm of the ventricles, grey matter within ``1.5 a``
    mm of the exterior CSF (cortical thinning) and hippocampus within ``3 a`` mm of its surface
    becomes CSF (the template's deep-ventricle intensity), each with its own level ``a``.
    Every subject's CSF surfaces are redrawn with the same 1.5 mm partial-volume ramp, so
    edges look alike in both classes; only their positions move.
Nuisance (both classes, independent of the label)
    A small affine transform (rotations up to 3 degrees, scale 0.96-1.04 with 2 % anisotropy,
    shifts up to 2 mm), a smooth elastic displacement (RMS 1.5 mm, correlation ~ 12 mm), a
    smooth multiplicative bias field (log-SD 0.05: the residual of OASIS' gain-field
    correction), an intensity gain, and Rician noise (SD 1.5-3.5 % of white matter on the
    acquisition grid, resampled with trilinear weights onto the atlas grid at a random
    sub-voxel offset, as registration does: OASIS' T88 images are resampled, so their noise is
    spatially correlated and lower per voxel than the scanner's). The image is then masked
    with the (transformed) template brain mask, like OASIS' ``t88_masked_gfc`` images, so the
    outline of the masked brain does not depend on the class.

Only the slices asked for are rendered, exactly as they would be in the full volume (every
step is per output voxel, and the noise of a slice is seeded by subject and slice), so a
cohort of single slices costs milliseconds per subject; ``out_dir`` writes whole volumes.
"""

import csv
import dataclasses
import functools
import numbers
from pathlib import Path

import numpy as np

from torchscope.alzheimer._cohort import OASIS_COLUMNS, _cohort_from_rows
from torchscope.alzheimer._io import _check_axis_index, normalise_slice
from torchscope.backend import check_int

#: OASIS-1's atlas grid (voxels, 1 mm).
GRID = (176, 208, 176)
#: Template voxel at output voxel (0, 0, 0): centres the brain in x and y, and puts output
#: slice 105 at template slice 84 (MNI z = +12 mm).
_OFFSET = (10, 13, -21)
_MNI_ORIGIN = (98, 134, 72)  # template voxel of MNI (0, 0, 0)
#: mm of tissue turned to CSF per unit of atrophy: ventricles, cortex, hippocampus.
ATROPHY_MM = {"ventricles": 6.0, "cortex": 1.5, "hippocampus": 3.0}
#: Share of the disease's atrophy level that reaches the cortex (ventricles and hippocampi get
#: all of it), and the range of each subject's own cortical atrophy (uniform, both classes).
CORTEX_SHARE = 0.3
CORTEX_SPREAD = 1.0
_WHITE = 0.87  # template intensity of white matter
_EDGE = 1.5  # mm, width of the partial-volume ramp of the redrawn CSF surfaces
_SESSION_DISC = 40  # sessions per "disc" folder in the written layout, as OASIS-1 roughly has


@dataclasses.dataclass(frozen=True)
class _Anatomy:
    t1: np.ndarray
    grey: np.ndarray
    mask: np.ndarray
    ventricles: np.ndarray
    exterior: np.ndarray
    hippocampus: np.ndarray
    d_ventricles: np.ndarray
    d_exterior: np.ndarray
    d_hippocampus: np.ndarray
    csf_value: float
    sample: dict  # every 2nd voxel of the brain, for whole-brain volumes (nWBV)


def _crop_or_pad(a, offset, shape):
    out = np.zeros(shape, dtype=a.dtype)
    src, dst = [], []
    for o, n, size in zip(offset, shape, a.shape):
        lo, hi = max(o, 0), min(o + n, size)
        src.append(slice(lo, hi))
        dst.append(slice(lo - o, hi - o))
    out[tuple(dst)] = a[tuple(src)]
    return out


def _capsule(shape, p0, p1, radius):
    """Voxels within ``radius`` of the segment p0-p1 (output voxel coordinates)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    lo = np.floor(np.minimum(p0, p1) - radius).astype(int)
    hi = np.ceil(np.maximum(p0, p1) + radius).astype(int) + 1
    out = np.zeros(shape, bool)
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
    pts = np.stack(grids, -1).astype(float)
    d = p1 - p0
    s = np.clip(((pts - p0) @ d) / (d @ d), 0, 1)
    near = np.linalg.norm(pts - (p0 + s[..., None] * d), axis=-1) <= radius
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = near
    return out


def _mni_to_voxel(xyz):
    return tuple(c + o - off for c, o, off in zip(xyz, _MNI_ORIGIN, _OFFSET))


def _template_file(kind):
    """Path of a template file that nilearn ships in its wheel (found without importing
    nilearn, which takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("phantom_cohort needs nilearn (for its bundled MNI152 template).")
    path = (Path(spec.submodule_search_locations[0]) / "datasets" / "data"
            / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz")
    if not path.is_file():
        raise FileNotFoundError(f"nilearn's bundled template {path} is missing.")
    return path


def _load_template(kind):
    """The MNI152 2009a template ``kind`` ("t1", "gm", "wm") at 1 mm scaled to [0, 1]: the same
    array as ``nilearn.datasets.load_mni152_template(resolution=1)`` (and ``_gm_``/``_wm_``)."""
    import nibabel as nib

    a = np.asarray(nib.load(str(_template_file(kind))).get_fdata(), np.float32)
    return a / a.max()


@functools.lru_cache(maxsize=1)
def _anatomy():
    import scipy.ndimage as ndi

    def grid(kind):
        return _crop_or_pad(_load_template(kind), _OFFSET, GRID)

    t1, grey, white = grid("t1"), grid("gm"), grid("wm")
    mask = t1 > 0
    csf = np.clip(1 - grey - white, 0, 1) * mask
    dark = csf > 0.5
    labels, _ = ndi.label(dark | ~mask)
    exterior = labels == labels[0, 0, 0]
    inner = dark & ~exterior
    labels, n = ndi.label(inner)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=n + 1)[1:]
    coords = np.unravel_index(np.flatnonzero(flat), GRID)
    centres = np.stack([np.bincount(flat[flat > 0], weights=c, minlength=n + 1)[1:]
                        for c in coords], 1) / np.maximum(sizes, 1)[:, None]
    ventricles = labels == (int(np.argmax(sizes)) + 1)

    hippocampus = np.zeros(GRID, bool)
    for side in (-1, 1):  # head (anterior, low) to tail (posterior, high), radius 5 mm
        head = _mni_to_voxel((side * 26, -10, -20))
        tail = _mni_to_voxel((side * 24, -38, 0))
        hippocampus |= _capsule(GRID, head, tail, 5.0)
        # the temporal horn next to it belongs to the ventricles
        for k, c in enumerate(centres):
            if sizes[k] >= 20 and np.linalg.norm(np.subtract(c, _mni_to_voxel(
                    (side * 30, -12, -20)))) < 12:
                ventricles |= labels == k + 1
    hippocampus &= (grey > 0.4) & ~ventricles

    def distance_outside(region, reach):
        """Distance (mm) from ``region`` for voxels up to ``reach`` mm away (else ``reach``)."""
        idx = np.argwhere(region)
        lo = np.maximum(idx.min(0) - int(reach) - 2, 0)
        hi = np.minimum(idx.max(0) + int(reach) + 3, GRID)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        out = np.full(GRID, reach, np.float32)
        out[box] = np.minimum(ndi.distance_transform_edt(~region[box]), reach)
        return out

    def distance_inside(region):
        idx = np.argwhere(region)
        lo, hi = np.maximum(idx.min(0) - 1, 0), np.minimum(idx.max(0) + 2, GRID)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        out = np.zeros(GRID, np.float32)
        out[box] = ndi.distance_transform_edt(region[box])
        return out

    # signed distance to the ventricles' surface: > 0 outside, < 0 inside
    d_vent = distance_outside(ventricles, 20.0) - distance_inside(ventricles)
    brain_box = tuple(slice(a, b) for a, b in zip(np.argwhere(mask).min(0) - 1,
                                                   np.argwhere(mask).max(0) + 2))
    d_ext = np.zeros(GRID, np.float32)
    d_ext[brain_box] = ndi.distance_transform_edt(~exterior[brain_box])
    d_hip = distance_inside(hippocampus)
    sub = (slice(None, None, 2),) * 3
    keep = mask[sub]
    sample = {
        "tissue": (grey + white)[sub][keep],
        "grey": grey[sub][keep],
        "d_ventricles": d_vent[sub][keep], "ventricles": ventricles[sub][keep],
        "d_exterior": d_ext[sub][keep], "exterior": exterior[sub][keep],
        "d_hippocampus": d_hip[sub][keep], "hippocampus": hippocampus[sub][keep],
    }
    return _Anatomy(
        t1=t1, grey=grey, mask=mask, ventricles=ventricles, exterior=exterior,
        hippocampus=hippocampus, d_ventricles=d_vent, d_exterior=d_ext, d_hippocampus=d_hip,
        csf_value=float(np.median(t1[d_vent <= -2])), sample=sample,
    )


def _ramp(depth):
    """Partial-volume fraction of a voxel whose centre lies ``depth`` mm inside a surface."""
    return np.clip(depth / _EDGE + 0.5, 0, 1)


def _loss(atrophy, *, grey, d_ventricles, ventricles, d_exterior, exterior, d_hippocampus,
          hippocampus):
    """Fraction of each voxel's tissue replaced by CSF (arrays of any shape).

    ``atrophy`` is one level for all three regions or a (ventricles, cortex, hippocampus)
    triple.

    Every subject's ventricles, cortex and hippocampi are redrawn with the same soft edge
    (``_EDGE`` mm wide), at a surface moved by the atrophy: the edge profile does not depend
    on the class, only where it lies.
    """
    del ventricles  # the signed distance says it all
    mm = ATROPHY_MM
    a_vent, a_cortex, a_hip = np.broadcast_to(np.asarray(atrophy, dtype=float), (3,))
    lv = _ramp(mm["ventricles"] * a_vent + 0.5 - d_ventricles)
    lc = grey * _ramp(mm["cortex"] * a_cortex + 0.5 - d_exterior)
    lc[exterior] = 0
    lh = hippocampus * _ramp(mm["hippocampus"] * a_hip + 0.5 - d_hippocampus)
    return np.maximum(np.maximum(lv, lc), lh)


def _atrophied(anat, box, atrophy):
    """The template with the given atrophy, inside ``box`` (a tuple of slices)."""
    loss = _loss(
        atrophy, grey=anat.grey[box], d_ventricles=anat.d_ventricles[box],
        ventricles=anat.ventricles[box], d_exterior=anat.d_exterior[box],
        exterior=anat.exterior[box], d_hippocampus=anat.d_hippocampus[box],
        hippocampus=anat.hippocampus[box],
    )
    t1 = anat.t1[box]
    return (t1 * (1 - loss) + anat.csf_value * loss) * anat.mask[box]


def _brain_fraction(anat, atrophy):
    """Tissue volume / intracranial (mask) volume of the atrophied template: the model's nWBV."""
    s = anat.sample
    loss = _loss(atrophy, **{k: s[k] for k in ("grey", "d_ventricles", "ventricles",
                                                "d_exterior", "exterior", "d_hippocampus",
                                                "hippocampus")})
    return float(np.sum(s["tissue"] * (1 - loss)) / len(s["tissue"]))


# --------------------------------------------------------------------------------- subjects
@dataclasses.dataclass(frozen=True)
class _Scan:
    """Everything random about one scan (a subject's session)."""

    seed: tuple
    atrophy: tuple  # (ventricles, cortex, hippocampus)
    rotation: np.ndarray  # 3x3
    scale: np.ndarray  # 3
    shift: np.ndarray  # 3, voxels
    gain: float
    noise: float  # SD on the acquisition grid, as a fraction of white matter
    offset: np.ndarray  # 3, sub-voxel offset of the acquisition grid


def _scan(seed, atrophy):
    rng = np.random.default_rng(seed)
    angles = np.deg2rad(rng.uniform(-3, 3, 3))
    rot = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rot = rot @ r
    scale = rng.uniform(0.96, 1.04) * (1 + rng.uniform(-0.02, 0.02, 3))
    atrophy = tuple(float(a) for a in np.broadcast_to(np.asarray(atrophy, dtype=float), (3,)))
    return _Scan(seed=tuple(seed), atrophy=atrophy, rotation=rot, scale=scale,
                 shift=rng.uniform(-2, 2, 3), gain=float(rng.uniform(800, 1200)),
                 noise=float(rng.uniform(0.015, 0.035)), offset=rng.uniform(0, 1, 3))


def _smooth_field(rng, spacing, sigma, rms, components):
    """A smooth random field on a coarse grid (``spacing`` mm), scaled to the given RMS."""
    import scipy.ndimage as ndi

    shape = tuple(int(np.ceil(n / spacing)) + 2 for n in GRID)
    out = []
    for _ in range(components):
        f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
        out.append((f * (rms / f.std())).astype(np.float32))
    return np.stack(out)


def _render(anat, scan, zs, chunk=16):
    """The scan's output slices ``zs`` (axis 2 of the grid) as float32 (len(zs), 176, 208).

    Every step is per output voxel (and the noise is seeded per slice), so a slice comes out
    the same whether it is rendered alone or with the whole volume.
    """
    zs = [int(z) for z in zs]
    rng = np.random.default_rng(scan.seed + (1,))
    elastic = _smooth_field(rng, 4.0, 3.0, 1.5, 3)  # mm, on a 4 mm grid
    bias = _smooth_field(rng, 16.0, 1.5, 0.05, 1)[0]  # log gain, on a 16 mm grid
    return np.concatenate([_render_chunk(anat, scan, zs[i:i + chunk], elastic, bias)
                           for i in range(0, len(zs), chunk)])


def _render_chunk(anat, scan, zs, elastic, bias):
    import scipy.ndimage as ndi

    centre = (np.array(GRID) - 1) / 2
    matrix = scan.rotation * scan.scale[None, :]
    ii, jj, kk = np.meshgrid(np.arange(GRID[0]), np.arange(GRID[1]), np.array(zs),
                             indexing="ij")
    p = np.stack([ii.ravel(), jj.ravel(), kk.ravel()]).astype(np.float32)
    del ii, jj, kk
    u = np.stack([ndi.map_coordinates(e, p / 4.0 + 1, order=1, mode="nearest")
                  for e in elastic])
    q = matrix @ (p - centre[:, None]) + centre[:, None] + scan.shift[:, None] + u
    del u
    lo = np.clip(np.floor(q.min(1)).astype(int) - 1, 0, GRID)
    hi = np.clip(np.floor(q.max(1)).astype(int) + 3, 0, GRID)
    if any(b <= a for a, b in zip(lo, hi)):
        return np.zeros((len(zs), GRID[0], GRID[1]), np.float32)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    local = q - lo[:, None]
    del q
    image = ndi.map_coordinates(_atrophied(anat, box, scan.atrophy), local, order=1,
                                mode="constant", cval=0.0)
    inside = ndi.map_coordinates(anat.mask[box].astype(np.float32), local, order=1,
                                 mode="constant", cval=0.0) >= 0.5
    del local
    image *= np.exp(ndi.map_coordinates(bias, p / 16.0 + 1, order=1, mode="nearest"))
    image = image.reshape(GRID[0], GRID[1], len(zs))
    inside = inside.reshape(image.shape)
    sd = scan.noise * _WHITE
    out = np.empty((len(zs), GRID[0], GRID[1]), np.float32)
    planes = {}
    for n, z in enumerate(zs):
        n1, n2 = _resampled_noise(scan, z, planes)
        value = np.sqrt((image[..., n] + sd * n1) ** 2 + (sd * n2) ** 2) * inside[..., n]
        out[n] = np.round(value * (scan.gain / _WHITE))
    return out


def _noise_plane(scan, k, planes):
    """Complex white noise of acquisition-grid plane ``k`` (seeded by scan and plane)."""
    if k not in planes:
        rng = np.random.default_rng(scan.seed + (2, int(k)))
        planes[k] = rng.standard_normal((2, GRID[0] + 1, GRID[1] + 1), dtype=np.float32)
    return planes[k]


def _resampled_noise(scan, z, planes):
    """Noise of output slice ``z``: white noise on the acquisition grid (offset by a sub-voxel
    shift), resampled with trilinear weights onto the atlas grid, as registration does. The
    result is spatially correlated with a smaller per-voxel SD (0.35-1 of the acquisition SD)."""
    wx, wy, wz = scan.offset
    out = 0
    for dk, w_k in ((0, 1 - wz), (1, wz)):
        plane = _noise_plane(scan, z + dk, planes)
        out = out + w_k * ((1 - wx) * (1 - wy) * plane[:, :-1, :-1]
                           + wx * (1 - wy) * plane[:, 1:, :-1]
                           + (1 - wx) * wy * plane[:, :-1, 1:] + wx * wy * plane[:, 1:, 1:])
    return out.astype(np.float32)


def _check_severity(severity):
    try:
        lo, hi = (float(v) for v in severity)
    except (TypeError, ValueError):
        raise TypeError(f"severity must be a (low, high) pair, got {severity!r}.") from None
    if not 0 <= lo <= hi:
        raise ValueError(f"severity must satisfy 0 <= low <= high, got {severity!r}.")
    return lo, hi


def _subjects(n_subjects, severity, seed, ad_fraction, rescans):
    """Clinical draws per subject: a list of dicts (one per session), OASIS columns + truth."""
    root = np.random.SeedSequence(seed)
    base = int(root.generate_state(1)[0])
    rng = np.random.default_rng(root)
    n_ad = round(n_subjects * ad_fraction)
    is_ad = rng.permutation(np.arange(n_subjects) < n_ad)
    rescanned = set(rng.choice(n_subjects, size=rescans, replace=False).tolist())
    lo, hi = severity
    sessions = []
    for i in range(n_subjects):
        r = np.random.default_rng((base, i, 0))
        age = float(np.clip(np.round(r.normal(76, 8)), 60, 96))
        male = r.uniform() < 0.4
        sev = float(r.uniform(lo, hi)) if is_ad[i] else 0.0
        a_age = max(0.0, 0.3 * (age - 60) / 36 + r.normal(0, 0.05))
        a_own = float(r.uniform(0, CORTEX_SPREAD))  # the subject's own cortex, not the label's
        atrophy = a_age + sev
        regions = (atrophy, a_age + a_own + CORTEX_SHARE * sev, atrophy)
        cdr = 0.0 if not is_ad[i] else (0.5 if sev < 0.55 else 1.0 if sev < 0.85 else 2.0)
        mmse = (np.clip(np.round(30 - abs(r.normal(0, 1.2))), 25, 30) if not is_ad[i]
                else np.clip(np.round(29 - 12 * sev + r.normal(0, 2)), 10, 30))
        etiv = float(np.round(r.normal(1450 + 130 * male, 120)))
        n_sessions = 2 if i in rescanned else 1
        for session in range(1, n_sessions + 1):
            sessions.append({
                "ID": f"OAS1_{i + 1:04d}_MR{session}", "subject": f"OAS1_{i + 1:04d}",
                "M/F": "M" if male else "F", "Hand": "R", "Age": age,
                "Educ": float(r.integers(1, 6)) if session == 1 else None,
                "SES": float(r.integers(1, 6)) if session == 1 else None,
                "MMSE": float(mmse), "CDR": cdr, "eTIV": etiv,
                "ASF": float(np.round(1755.0 / etiv, 3)),
                "Delay": float(r.integers(1, 90)) if session > 1 else None,
                "severity": sev, "atrophy": atrophy, "regions": regions,
                "seed": (base, i, session), "nwbv_noise": float(r.normal(0, 0.003)),
            })
    # the re-scan shares the subject's education and SES
    for s in sessions:
        if s["ID"].endswith("_MR2"):
            first = next(t for t in sessions if t["ID"] == s["subject"] + "_MR1")
            s["Educ"], s["SES"] = first["Educ"], first["SES"]
    return sessions


def _write_csv(path, sessions):
    def cell(value, digits=None):
        if value is None:
            return "N/A"
        if digits is None:
            return f"{value:g}" if isinstance(value, float) else str(value)
        return f"{value:.{digits}f}"

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(OASIS_COLUMNS)
        for s in sessions:
            w.writerow([s["ID"], s["M/F"], s["Hand"], cell(s["Age"]), cell(s["Educ"]),
                        cell(s["SES"]), cell(s["MMSE"]), cell(s["CDR"]), cell(s["eTIV"]),
                        cell(s["nWBV"], 3), cell(s["ASF"], 3), cell(s["Delay"])])


def _write_analyze(path_hdr, volume):
    import nibabel as nib

    header = nib.AnalyzeHeader(endianness=">")  # OASIS-1's files are big-endian
    header.set_data_dtype(np.int16)
    img = nib.AnalyzeImage(volume[..., None].astype(np.int16), None, header=header)
    img.header.set_zooms((1.0, 1.0, 1.0, 1.0))
    nib.save(img, str(path_hdr))


def phantom_cohort(n_subjects, *, severity=(0.3, 1.0), seed=None, out_dir=None,
                   ad_fraction=0.5, rescans=0, axis=2, index=105):
    """A synthetic OASIS-1-like cohort built from the MNI152 template (nothing is downloaded).

    Half the subjects (``ad_fraction``) get disease-like atrophy (ventricle enlargement,
    hippocampal shrinkage, cortical thinning) of random ``severity`` on top of the
    age-related atrophy every subject has; every scan gets its own nuisance (small affine,
    elastic deformation, bias field, gain, Rician noise) drawn the same way for both classes.
    See the module notes of :mod:`torchscope.alzheimer._phantom` for the model.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (>= 2).
    severity : (float, float), optional
        Range of the disease severity of the AD class, drawn uniformly (atrophy units:
        1 means 6 mm of ventricle enlargement, 3 mm of hippocampal shrinkage and
        0.3 x 1.5 mm of cortical thinning on top of ageing and of the subject's own cortical
        atrophy; ageing alone reaches about 0.3 in the oldest subjects).
    seed : int or None
        The same seed gives the same cohort (subject ``i`` is the same whatever
        ``n_subjects``, apart from its label).
    out_dir : str or path-like, optional
        Also write the cohort in OASIS-1's layout and formats: big-endian int16 Analyze pairs
        ``disc<k>/OAS1_xxxx_MRy/PROCESSED/MPRAGE/T88_111/`` +
        ``OAS1_xxxx_MRy_mpr_n4_anon_111_t88_masked_gfc.hdr`` (and ``.img``)
        (176 x 208 x 176 x 1) and ``oasis_cross-sectional.csv`` with OASIS-1's columns
        (ID, M/F, Hand, Age, Educ, SES, MMSE, CDR, eTIV, nWBV, ASF, Delay), so that
        :func:`load_oasis` reads it back. Whole volumes take about a second each.
    ad_fraction : float, optional
        Fraction of subjects with disease (CDR 0.5 to 2, by severity).
    rescans : int, optional
        Number of subjects with a second session (``..._MR2``: the same anatomy, a new
        nuisance), like OASIS-1's reliability re-scans.
    axis, index : int, optional
        The slice the returned cohort holds (as in :func:`extract_slice`).

    Returns
    -------
    Cohort
        One row per session. ``clinical`` holds the OASIS columns (nWBV measured on the 3-D
        phantom: tissue / intracranial volume, plus 0.003 SD measurement noise) and the
        ground truth: ``severity``, ``atrophy`` (ageing + disease: the level of the
        ventricles and hippocampi) and ``cortical_atrophy``.
    """
    if not isinstance(n_subjects, numbers.Integral) or isinstance(n_subjects, bool) \
            or n_subjects < 2:
        raise ValueError(f"n_subjects must be an integer >= 2, got {n_subjects!r}.")
    severity = _check_severity(severity)
    if not 0 < ad_fraction < 1:
        raise ValueError(f"ad_fraction must be in (0, 1), got {ad_fraction!r}.")
    if not isinstance(rescans, numbers.Integral) or not 0 <= rescans <= n_subjects:
        raise ValueError(f"rescans must be an integer in [0, n_subjects], got {rescans!r}.")
    axis, index = _check_axis_index(GRID, axis, index, name="phantom grid")
    if not isinstance(seed, np.random.SeedSequence):
        seed = check_int("seed", seed, 0, allow_none=True)
    anat = _anatomy()
    sessions = _subjects(int(n_subjects), severity, seed, ad_fraction, int(rescans))
    for s in sessions:
        s["nWBV"] = float(np.round(_brain_fraction(anat, s["regions"]) + s["nwbv_noise"], 3))

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / "oasis_cross-sectional.csv", sessions)
    rows, slices = [], []
    for s in sessions:
        scan = _scan(s["seed"], s["regions"])
        if out is not None:
            volume = _render(anat, scan, range(GRID[2])).transpose(1, 2, 0)
            number = int(s["subject"][5:])
            folder = (out / f"disc{(number - 1) // _SESSION_DISC + 1}" / s["ID"] / "PROCESSED"
                      / "MPRAGE" / "T88_111")
            folder.mkdir(parents=True, exist_ok=True)
            _write_analyze(folder / f"{s['ID']}_mpr_n4_anon_111_t88_masked_gfc.hdr", volume)
            image = np.take(volume, index, axis=axis)
        elif axis == 2:
            image = _render(anat, scan, [index])[0]
        else:  # a sagittal or coronal slice needs the whole volume
            volume = _render(anat, scan, range(GRID[2])).transpose(1, 2, 0)
            image = np.take(volume, index, axis=axis)
        slices.append(normalise_slice(image))
        row = {k: s[k] for k in OASIS_COLUMNS}
        row["severity"], row["atrophy"] = s["severity"], s["atrophy"]
        row["cortical_atrophy"] = s["regions"][1]
        rows.append((s["ID"], s["subject"], row))
    source = {"generator": "phantom_cohort", "n_subjects": int(n_subjects),
              "severity": severity, "seed": seed, "ad_fraction": ad_fraction,
              "rescans": int(rescans), "axis": axis, "index": index,
              "out_dir": None if out is None else str(out)}
    return _cohort_from_rows(rows, np.stack(slices), [], source)
