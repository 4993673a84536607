"""Cohorts of single MRI slices with labels, and the OASIS-1 loader."""

import csv
import dataclasses
import re
from pathlib import Path

import numpy as np

from torchscope.alzheimer._io import _check_axis_index, check_unit_range, normalise_slice

#: The clinical columns of OASIS-1's ``oasis_cross-sectional.csv``, in its order.
OASIS_COLUMNS = ("ID", "M/F", "Hand", "Age", "Educ", "SES", "MMSE", "CDR", "eTIV", "nWBV",
                 "ASF", "Delay")
#: The processed image the paper uses: atlas-registered (Talairach, T88), brain-masked,
#: gain-field corrected.
OASIS_PATTERN = "*_t88_masked_gfc.hdr"
_SESSION = re.compile(r"(OAS1_\d{4})_(MR\d+)")
_MISSING = {"", "n/a", "na", "nan", "none", "."}
_LABELS = {0: "healthy control (CDR 0)", 1: "AD or MCI (CDR >= 0.5)"}


@dataclasses.dataclass(frozen=True, eq=False)
class Cohort:
    """Slices of MRI scans with their subjects, labels and clinical data (one row per scan).

    Attributes
    ----------
    ids : numpy.ndarray of str, shape (N,)
        Scan (session) ids, e.g. ``"OAS1_0061_MR2"``.
    subjects : numpy.ndarray of str, shape (N,)
        Subject ids, e.g. ``"OAS1_0061"``: a re-scan shares its subject with the first scan,
        and splits keep a subject's rows together.
    slices : numpy.ndarray of float32, shape (N, H, W)
        One slice per scan, each scaled to [0, 1].
    labels : numpy.ndarray of int64, shape (N,)
        1 for AD or MCI (CDR >= 0.5), 0 for healthy controls (CDR 0).
    cdr : numpy.ndarray of float, shape (N,)
        Clinical Dementia Rating.
    age : numpy.ndarray of float, shape (N,)
        Years; NaN where unknown.
    sex : numpy.ndarray of str, shape (N,)
        ``"F"``, ``"M"`` or ``""`` (unknown).
    clinical : dict of str to numpy.ndarray
        The clinical table's other columns (``MMSE``, ``eTIV``, ``nWBV``, ...), numbers as
        float (NaN where missing), text as str.
    excluded : tuple of (str, str)
        Scans that were found but left out, with the reason (e.g. no CDR).
    source : dict
        Where the slices come from (root folder or generator, axis, index).
    """

    ids: np.ndarray
    subjects: np.ndarray
    slices: np.ndarray
    labels: np.ndarray
    cdr: np.ndarray
    age: np.ndarray
    sex: np.ndarray
    clinical: dict = dataclasses.field(default_factory=dict)
    excluded: tuple = ()
    source: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = len(self.ids)
        for name in ("subjects", "slices", "labels", "cdr", "age", "sex"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Cohort: {name} has {len(getattr(self, name))} rows, ids has {n}."
                )
        for name, column in self.clinical.items():
            if len(column) != n:
                raise ValueError(f"Cohort: clinical[{name!r}] has {len(column)} rows, ids has {n}.")
        if self.slices.ndim != 3:
            raise ValueError(f"Cohort: slices must be (N, H, W), got shape {self.slices.shape}.")
        check_unit_range(self.slices, "Cohort: slices")

    def __len__(self):
        return len(self.ids)

    @property
    def n_subjects(self):
        """Number of distinct subjects."""
        return len(np.unique(self.subjects))

    def subset(self, rows):
        """The cohort restricted to ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.size == 0:  # [] is a float array, which numpy does not index with
            rows = rows.astype(int)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return dataclasses.replace(
            self,
            ids=self.ids[rows], subjects=self.subjects[rows], slices=self.slices[rows],
            labels=self.labels[rows], cdr=self.cdr[rows], age=self.age[rows],
            sex=self.sex[rows], clinical={k: v[rows] for k, v in self.clinical.items()},
        )

    def summary(self):
        """A short human-readable description: counts per class, subjects, exclusions."""
        n_pos = int(self.labels.sum())
        lines = [(
            f"{len(self)} scans of {self.n_subjects} subjects, slices {self.slices.shape[1:]}: "
            f"{n_pos} {_LABELS[1]}, {len(self) - n_pos} {_LABELS[0]}"
        )]
        if len(self.age) and np.isfinite(self.age).any():
            lines.append(f"age {np.nanmin(self.age):.0f}-{np.nanmax(self.age):.0f} "
                         f"(mean {np.nanmean(self.age):.1f})")
        if self.excluded:
            reasons = {}
            for _, why in self.excluded:
                reasons[why] = reasons.get(why, 0) + 1
            lines.append("left out: " + "; ".join(f"{n} ({why})" for why, n in reasons.items()))
        return "\n".join(lines)

    def __repr__(self):
        return f"Cohort({self.summary().splitlines()[0]})"


# ------------------------------------------------------------------------------ clinical CSV
def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_clinical_csv(path):
    """Rows of an OASIS-style clinical table, keyed by scan id (missing values as ``None``).

    Parameters
    ----------
    path : str or path-like
        A CSV with an ``ID`` column (``oasis_cross-sectional.csv`` of OASIS-1).

    Returns
    -------
    dict of str to dict
        ``{scan id: {column: value}}``; numbers as float, text as str, empty cells as ``None``.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        if "ID" not in fields:
            raise ValueError(f"clinical_csv={str(path)!r} has no 'ID' column (columns: {fields}).")
        rows = {}
        for raw in reader:
            row = {}
            for key, value in raw.items():
                if key is None:
                    continue
                key = key.strip()
                value = (value or "").strip()
                if value.lower() in _MISSING:
                    row[key] = None
                elif key in ("ID", "M/F", "Hand"):
                    row[key] = value
                else:
                    number = _number(value)
                    row[key] = number if number is not None else value
            if row.get("ID"):
                rows[row["ID"]] = row
    return rows


def _find_csv(root):
    preferred = sorted(root.rglob("oasis_cross-sectional*.csv"))
    for candidate in preferred + sorted(root.rglob("*.csv")):
        try:
            with open(candidate, newline="", encoding="utf-8-sig") as f:
                header = [c.strip() for c in next(csv.reader(f), [])]
        except (OSError, UnicodeDecodeError):
            continue
        if "ID" in header and "CDR" in header:
            return candidate
    return None


# ------------------------------------------------------------------------------- the loader
class _Unreadable(Exception):
    pass


def _read_slice(path, axis, index):
    """Slice ``index`` along ``axis`` of an image file, scaled to [0, 1] (reads that slice only)."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        img = nib.load(str(path))
        shape = img.shape
    except (OSError, EOFError, ImageFileError) as exc:
        raise _Unreadable(str(exc)) from None
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise _Unreadable(f"expected a 3-D volume (or 3-D x 1), got shape {shape}")
    # an index outside the grid is the caller's mistake, not the file's: raise
    axis, index = _check_axis_index(shape[:3], axis, index, name=f"volume {path.name}")
    key = [slice(None)] * 3 + [0] * (len(shape) - 3)
    key[axis] = index
    try:
        data = np.asarray(img.dataobj[tuple(key)], dtype=np.float32)
    except (OSError, EOFError, ValueError) as exc:
        raise _Unreadable(str(exc)) from None
    return normalise_slice(data)


def load_oasis(root, clinical_csv=None, *, axis=2, index=105, rescans=True):
    """Load OASIS-1 (cross-sectional) as a :class:`Cohort` of single slices, the paper's protocol.

    Finds every ``*_t88_masked_gfc.hdr`` under ``root`` (OASIS-1's layout: ``disc1/OAS1_0001_MR1/
    PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr``), takes slice
    ``index`` along ``axis`` of each (scaled to [0, 1]) and joins the clinical table on the
    scan id. Labels: CDR >= 0.5 (very mild to severe dementia, MCI included) is 1,
    CDR 0 is 0.

    Parameters
    ----------
    root : str or path-like
        The folder holding the unpacked OASIS-1 discs (any depth).
    clinical_csv : str or path-like, optional
        ``oasis_cross-sectional.csv``. Default: the first CSV under ``root`` with ``ID`` and
        ``CDR`` columns (``oasis_cross-sectional*.csv`` preferred).
    axis, index : int, optional
        The slice, as in :func:`extract_slice` (default: axial slice 105, the paper's 106th).
    rescans : bool, optional
        Keep re-scans (``..._MR2``, OASIS-1's reliability sessions) as extra rows of their
        subject (default). A re-scan takes its clinical values from its own row, with missing
        ones filled from the subject's other sessions. ``False`` keeps each subject's first
        session only.

    Returns
    -------
    Cohort
        ``cohort.excluded`` lists the scans found but left out and why: no CDR (OASIS-1's
        young adults have none), not in the clinical table, an unreadable file, or (with
        ``rescans=False``) a re-scan.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r} is not a folder.")
    csv_path = Path(clinical_csv) if clinical_csv is not None else _find_csv(root)
    if csv_path is None:
        raise ValueError(
            f"no clinical table (a CSV with ID and CDR columns) under root={str(root)!r}; pass "
            "clinical_csv= (OASIS-1's oasis_cross-sectional.csv)."
        )
    if not csv_path.is_file():
        raise ValueError(f"clinical_csv={str(csv_path)!r} is not a file.")
    table = read_clinical_csv(csv_path)
    by_subject = {}
    for sid, row in table.items():
        m = _SESSION.fullmatch(sid)
        by_subject.setdefault(m.group(1) if m else sid, []).append(row)

    found = {}
    excluded = []
    for path in sorted(root.rglob(OASIS_PATTERN)):
        m = _SESSION.search(path.name)
        if not m:
            excluded.append((path.name, "file name has no OAS1_xxxx_MRy session id"))
            continue
        scan = m.group(0)
        if scan in found:
            excluded.append((f"{scan} ({path.name})", "second image for the same session"))
            continue
        found[scan] = (m.group(1), m.group(2), path)
    if not found:
        raise ValueError(f"no {OASIS_PATTERN} files under root={str(root)!r}.")

    rows, slices = [], []
    first_session = {}
    for scan in sorted(found):
        subject, _, path = found[scan]
        if not rescans and subject in first_session:
            excluded.append((scan, f"re-scan of {first_session[subject]} (rescans=False)"))
            continue
        own = table.get(scan)
        others = [r for r in by_subject.get(subject, []) if r is not own]
        if own is None and not others:
            excluded.append((scan, "not in the clinical table"))
            continue
        merged = dict(own or {})
        for other in others:
            for key, value in other.items():
                if key in ("ID", "Delay"):
                    continue
                if merged.get(key) is None and value is not None:
                    merged[key] = value
        merged["ID"] = scan
        cdr = merged.get("CDR")
        if not isinstance(cdr, float):
            excluded.append((scan, "no CDR"))
            continue
        try:
            image = _read_slice(path, axis, index)
        except _Unreadable as exc:
            excluded.append((scan, f"unreadable: {exc}"))
            continue
        if slices and image.shape != slices[0].shape:
            excluded.append((scan, f"slice shape {image.shape} differs from {slices[0].shape}"))
            continue
        first_session.setdefault(subject, scan)
        rows.append((scan, subject, merged))
        slices.append(image)
    if not rows:
        raise ValueError(
            f"no usable scans under root={str(root)!r}: {len(excluded)} left out "
            f"({'; '.join(sorted({why for _, why in excluded}))})."
        )
    return _cohort_from_rows(rows, np.stack(slices), excluded,
                             {"root": str(root), "clinical_csv": str(csv_path), "axis": axis,
                              "index": index, "pattern": OASIS_PATTERN})


def _cohort_from_rows(rows, slices, excluded, source):
    """Build a Cohort from ``(scan id, subject id, clinical row dict)`` triples."""
    ids = np.array([r[0] for r in rows], dtype=str)
    subjects = np.array([r[1] for r in rows], dtype=str)
    table = [r[2] for r in rows]
    cdr = np.array([row["CDR"] for row in table], dtype=float)
    age = np.array([row.get("Age") if isinstance(row.get("Age"), float) else np.nan
                    for row in table], dtype=float)
    sex = np.array([(row.get("M/F") or "").upper()[:1] for row in table], dtype=str)
    clinical = {}
    skip = {"ID", "CDR", "Age", "M/F"}
    columns = []
    for row in table:
        columns += [k for k in row if k not in skip and k not in columns]
    for column in columns:
        values = [row.get(column) for row in table]
        if all(v is None or isinstance(v, float) for v in values):
            clinical[column] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            clinical[column] = np.array(["" if v is None else str(v) for v in values], dtype=str)
    return Cohort(
        ids=ids, subjects=subjects, slices=np.ascontiguousarray(slices, dtype=np.float32),
        labels=(cdr >= 0.5).astype(np.int64), cdr=cdr, age=age, sex=sex, clinical=clinical,
        excluded=tuple(excluded), source=source,
    )
