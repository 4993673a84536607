"""Alzheimer's disease from one MRI slice: loading, a convolutional autoencoder and a classifier.

After Yagis, Seco De Herrera and Citi, *Convolutional autoencoder based deep learning approach
for Alzheimer's disease diagnosis using brain MRI* (``papers/004``): the 106th axial slice of
an OASIS-1 T1 volume (176 x 208 x 176, atlas-registered, brain-masked), scaled to [0, 1],
goes through a convolutional autoencoder; its encoder then feeds a small dense classifier for
AD + MCI (CDR >= 0.5) against healthy controls (CDR 0).

Research software, not a diagnostic device.

Data
    :func:`load_volume` (Analyze .hdr/.img and NIfTI), :func:`extract_slice`,
    :func:`load_oasis` (OASIS-1's layout and clinical table, as a :class:`Cohort`),
    :func:`phantom_cohort` (a synthetic cohort from nilearn's bundled MNI152 template, optionally
    written in OASIS-1's layout), :func:`subject_split` (by subject, stratified; a
    :class:`Split`).
Training
    :func:`train` (autoencoder on training subjects, then the classifier frozen and fine-tuned,
    early stopping and model selection on validation subjects), :func:`iterate_train` (the same
    as a generator of :class:`TrainProgress` snapshots), returning a :class:`Trained`.
Use
    :func:`predict` (probability of AD), :func:`evaluate` (:class:`Metrics`, with the
    nWBV + age logistic-regression baseline), :func:`reconstruct` (the autoencoder's output),
    :func:`feature_maps` (the paper's Fig. 3 activations), :func:`occlusion_map` (which regions
    drive the decision), :func:`familiarity` (whether the autoencoder reconstructs a slice as
    well as its validation slices: a check that the slice resembles the training data), :func:`save_model` / :func:`load_model` (safetensors, no pickle),
    :func:`demo_model_path` (the shipped phantom-trained demo).
Leakage
    :func:`leakage_demo`: random labels, split by slice versus by subject.

Conventions: numpy arrays in and out; slices are ``(H, W)`` or stacks ``(N, H, W)`` in [0, 1];
options are keyword-only; ``device=None`` picks CUDA, then MPS, then the CPU; random functions
take ``seed``. Importing this module does not import torch; training does.
"""

from torchscope.backend import lazy_namespace

_SUBMODULES = {
    "load_volume": "_io",
    "extract_slice": "_io",
    "normalise_slice": "_io",
    "Cohort": "_cohort",
    "load_oasis": "_cohort",
    "read_clinical_csv": "_cohort",
    "OASIS_COLUMNS": "_cohort",
    "phantom_cohort": "_phantom",
    "Split": "_split",
    "subject_split": "_split",
    "train": "_train",
    "iterate_train": "_train",
    "Trained": "_train",
    "TrainProgress": "_train",
    "predict": "_inference",
    "reconstruct": "_inference",
    "feature_maps": "_inference",
    "occlusion_map": "_inference",
    "familiarity": "_inference",
    "evaluate": "_metrics",
    "Metrics": "_metrics",
    "save_model": "_persist",
    "load_model": "_persist",
    "demo_model_path": "_persist",
    "leakage_demo": "_leakage",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)
