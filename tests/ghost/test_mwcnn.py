"""The CH-MWCNN: Haar wavelets, the network, weights on disk, training, and ``method="mwcnn"``."""

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torchscope.ghost import (
    MWCNN,
    TrainingProgress,
    cnr,
    hadamard_patterns,
    load_mwcnn,
    reconstruct,
    save_mwcnn,
    simulate_buckets,
    speckle_patterns,
    train_mwcnn,
)
from torchscope.ghost._mwcnn import WEIGHTS_DIR, dwt, iwt, refine, shipped_configs
from torchscope.ghost._training import (
    HELD_OUT_LETTERS,
    LETTERS,
    _dead_leaves,
    _shapes,
    held_out_images,
    synthetic_objects,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a small shared CPU, two spinning threads make tiny convolutions
    ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mse(x, ref):
    return float(np.mean((np.asarray(x, np.float64) - ref) ** 2))


def _tiny(seed=0):
    """A small random-weight network (the last layer perturbed so it is not the identity)."""
    torch.manual_seed(seed)
    net = MWCNN((4, 8, 8), convs=1)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.1)
    return net.eval()


# --------------------------------------------------------------------------- wavelets
def test_dwt_analytic_blocks():
    a, b, c, d = 1.0, 2.0, 3.0, 5.0
    x = torch.tensor([[[[a, b], [c, d]]]])
    y = dwt(x).flatten()
    expected = [(a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    # constant -> LL only (2 x the value); checkerboard -> HH only; row stripes -> LH only
    ii, jj = np.mgrid[:8, :8]
    cases = {0: np.full((8, 8), 3.0), 3: (-1.0) ** (ii + jj), 1: (-1.0) ** ii, 2: (-1.0) ** jj}
    for band, img in cases.items():
        y = dwt(torch.tensor(img)[None, None]).numpy()[0]
        value = 6.0 if band == 0 else 2.0
        np.testing.assert_allclose(np.abs(y[band]), value, rtol=1e-12)
        np.testing.assert_allclose(np.delete(y, band, axis=0), 0.0, atol=1e-12)


def test_dwt_is_orthonormal_and_iwt_its_inverse(rng):
    # the 16 x 16 matrix of the DWT of 4 x 4 images is orthogonal
    basis = torch.eye(16, dtype=torch.float64).reshape(16, 1, 4, 4)
    m = dwt(basis).reshape(16, 16)
    np.testing.assert_allclose((m @ m.T).numpy(), np.eye(16), atol=1e-12)
    x = torch.tensor(rng.standard_normal((3, 5, 8, 16)))
    y = dwt(x)
    assert y.shape == (3, 20, 4, 8)
    np.testing.assert_allclose(torch.sum(y ** 2).item(), torch.sum(x ** 2).item(), rtol=1e-12)
    np.testing.assert_allclose(iwt(y).numpy(), x.numpy(), atol=1e-12)
    z = torch.tensor(rng.standard_normal((2, 8, 3, 5)))
    np.testing.assert_allclose(dwt(iwt(z)).numpy(), z.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        dwt(torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match="multiple of 4"):
        iwt(torch.zeros(1, 6, 2, 2))


# ---------------------------------------------------------------------------- network
def test_untrained_network_is_identity_and_batches(rng):
    net = MWCNN((4, 8, 8, 16), convs=2)
    x = torch.tensor(rng.uniform(size=(3, 32, 32)), dtype=torch.float32) * 500 + 20
    with torch.no_grad():
        np.testing.assert_allclose(refine(net, x).numpy(), x.numpy(), rtol=1e-5)
        tiny = _tiny()
        stack = refine(tiny, x)
        assert stack.shape == (3, 32, 32) and stack.dtype == torch.float32
        one = refine(tiny, x[1:2])
        np.testing.assert_allclose(stack[1].numpy(), one[0].numpy(), rtol=1e-4, atol=1e-3)
        # units: refining a scaled image gives the scaled result
        np.testing.assert_allclose(refine(tiny, 10 * x).numpy(), 10 * stack.numpy(), rtol=1e-4)


def test_save_load_round_trip(tmp_path, rng):
    net = _tiny(3)
    net.config["note"] = "round trip"
    path = tmp_path / "m.safetensors"
    sha = save_mwcnn(path, net)
    assert len(sha) == 64
    loaded = load_mwcnn(path, device="cpu")
    assert isinstance(loaded, MWCNN) and loaded.config == net.config
    for (k, v), (k2, v2) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    x = torch.tensor(rng.uniform(size=(2, 16, 16)), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(refine(net, x), refine(loaded, x))
    # a safetensors file: 8-byte header length, JSON header with our metadata, no pickle
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    entry = json.loads(header["__metadata__"]["torchscope.ghost.mwcnn"])
    assert entry["format_version"] == 1 and entry["config"]["note"] == "round trip"
    # the same model gives the same bytes (a reproducible sha256)
    assert save_mwcnn(tmp_path / "again.safetensors", loaded) == sha


def test_load_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError, match="no such file"):
        load_mwcnn(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_mwcnn(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a torchscope MWCNN"):
        load_mwcnn(other)
    with pytest.raises(TypeError, match="MWCNN"):
        save_mwcnn(tmp_path / "x.safetensors", torch.nn.Linear(2, 2))
    # a good file cut short, and one whose tensors have the right names but wrong shapes
    good = tmp_path / "good.safetensors"
    save_mwcnn(good, MWCNN((4, 8, 8), convs=1))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.safetensors.*not a safetensors file"):
        load_mwcnn(cut)
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safetensors API
    name = next(k for k, v in tensors.items() if v.ndim == 4)
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 2)
    misshapen = tmp_path / "misshapen.safetensors"
    save_file(tensors, str(misshapen), metadata=meta)
    with pytest.raises(ValueError, match=f"misshapen.safetensors.*do not fit.*{name}"):
        load_mwcnn(misshapen)
    # a configuration the network cannot be built from (a bare TypeError before)
    entry = json.loads(meta["torchscope.ghost.mwcnn"])
    entry["config"]["channels"] = 5
    save_file(tensors, str(tmp_path / "config.safetensors"),
              metadata={**meta, "torchscope.ghost.mwcnn": json.dumps(entry)})
    with pytest.raises(ValueError, match="config.safetensors.*cannot be built"):
        load_mwcnn(tmp_path / "config.safetensors")


# ----------------------------------------------------------------------- shipped model
def test_shipped_weights_have_a_card_and_a_matching_hash():
    import hashlib

    configs = shipped_configs()
    assert configs, "no shipped mwcnn weights"
    for name, config in configs.items():
        path = WEIGHTS_DIR / name
        assert path.stat().st_size < 12e6  # keeps the wheel small (2.6 M float32 parameters now)
        card = path.with_suffix(".md").read_text()
        assert hashlib.sha256(path.read_bytes()).hexdigest() in card
        assert {32, 64} <= set(config["sizes"]) and 0.1875 in config["ratios"]
        held = set(config["training"]["held_out_sources"])
        assert not held & set(config["training"]["sources"])


@pytest.mark.parametrize("n", [32, 64])
def test_shipped_model_beats_pinv_on_held_out_objects(n, device):
    images = held_out_images(n)
    natural, binary = images["camera_crop"], images["binary_horse"]
    p = hadamard_patterns(n, ratio=0.1875)
    b = simulate_buckets(np.stack([natural, binary]), p, modulation_depth=0.8, mask_error=0.03,
                         photons=1000, rng=7)
    opts = {"modulation_depth": 0.8, "device": device}
    net = reconstruct(b, p, method="mwcnn", **opts) / 1000
    pinv = reconstruct(b, p, method="pinv", **opts) / 1000
    assert net.shape == (2, n, n) and net.dtype == np.float32
    assert _mse(net[0], natural) < _mse(pinv[0], natural)
    mask = binary > 0.5
    assert cnr(net[1], mask) > cnr(pinv[1], mask)
    # a stack is one batch: the same images as one call each
    np.testing.assert_allclose(reconstruct(b[1], p, method="mwcnn", **opts) / 1000, net[1],
                               atol=1e-4 * np.abs(net[1]).max())


def test_shipped_model_selection_errors_and_warnings():
    obj = held_out_images(32)["binary_phantom"]
    p128 = hadamard_patterns(128, ratio=0.02)
    with pytest.raises(ValueError, match="no shipped model for 128 x 128"):
        reconstruct(np.ones(len(p128)), p128, method="mwcnn")
    speckle = speckle_patterns(32, 200, rng=0)
    with pytest.raises(ValueError, match="not Hadamard rows"):
        reconstruct(simulate_buckets(obj, speckle), speckle, method="mwcnn")
    natural = hadamard_patterns(32, ratio=0.1875, order="natural")
    with pytest.raises(ValueError, match="not the first 192 of an order"):
        reconstruct(simulate_buckets(obj, natural), natural, method="mwcnn")
    dense = hadamard_patterns(32, ratio=0.9)
    with pytest.warns(RuntimeWarning, match="outside the range"):
        reconstruct(simulate_buckets(obj, dense), dense, method="mwcnn")
    # differential masks measure the same rows: the shipped model applies, without a warning
    diff = hadamard_patterns(32, ratio=0.1875, kind="differential")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = reconstruct(simulate_buckets(obj, diff), diff, method="mwcnn")
    assert x.shape == (32, 32)
    with pytest.raises(TypeError, match="unknown option"):
        reconstruct(np.ones(len(diff)), diff, method="pinv", model=_tiny())


# -------------------------------------------------------------------------- training
def test_training_objects_are_valid_and_seeded():
    a = synthetic_objects(32, 12, rng=4)
    assert a.shape == (12, 32, 32) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, synthetic_objects(32, 12, rng=4))
    assert not set(HELD_OUT_LETTERS) & set(LETTERS)
    with pytest.raises(ValueError, match="unknown kinds"):
        synthetic_objects(32, 2, mix={"faces": 1})
    with pytest.raises(ValueError, match="positive sum"):
        synthetic_objects(32, 2, mix={"shapes": 0})


_MIX = {"shapes": 2, "dead_leaves": 1, "power_law": 1}  # no photographs: faster to set up


def _train(p, steps, seed=0, **kw):
    gen = train_mwcnn(p, steps=steps, batch_size=8, seed=seed, device="cpu", lr=3e-3,
                      channels=(8, 16, 16), convs=1, group=2, mix=_MIX, **kw)
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


@pytest.mark.parametrize("maker", [_dead_leaves, _shapes])
def test_training_shapes_drawn_in_their_windows_are_those_of_the_whole_grid(maker):
    # dead-leaves discs and binary shapes are computed only in a square around each one;
    # evaluated on the whole grid instead, the same random draws give the same objects
    for n in (16, 64):
        for seed in range(60):
            fast = maker(np.random.default_rng(seed), n)
            whole = maker(np.random.default_rng(seed), n, clip=False)
            np.testing.assert_array_equal(fast, whole)


def test_tiny_training_lowers_the_error_and_is_seeded():
    p = hadamard_patterns(16, ratio=0.25)
    objs = synthetic_objects(16, 32, rng=99, mix=_MIX)  # a validation set the run does not draw
    b = simulate_buckets(objs, p, modulation_depth=0.8, mask_error=0.02, photons=3000, rng=1)
    pinv = reconstruct(b, p, method="pinv", modulation_depth=0.8) / 3000
    progress, model = _train(p, 60)
    assert all(isinstance(s, TrainingProgress) for s in progress)
    assert [s.step for s in progress] == list(range(1, 61)) and progress[-1].steps == 60
    assert progress[-1].model is model and isinstance(model, MWCNN)
    losses = np.array([s.loss for s in progress])
    assert losses[-15:].mean() < losses[:15].mean()
    net = reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=model) / 3000
    assert _mse(net, objs) < _mse(pinv, objs)
    assert model.config["sizes"] == [16] and model.config["orders"] == ["zigzag"]
    assert model.config["ratios"] == [0.25]
    # the same seed gives the same weights; a user's model is not moved or changed by use
    _, again = _train(p, 3, seed=5)
    _, same = _train(p, 3, seed=5)
    for v, w in zip(again.state_dict().values(), same.state_dict().values()):
        assert torch.equal(v, w)


def test_worker_processes_give_the_same_training():
    # the measurements are drawn per group from the run's seed, not per process
    p = hadamard_patterns(16, ratio=0.25)
    _, serial = _train(p, 4, seed=3)
    progress, parallel = _train(p, 4, seed=3, workers=2)
    assert [s.step for s in progress] == [1, 2, 3, 4]
    for v, w in zip(serial.state_dict().values(), parallel.state_dict().values()):
        assert torch.equal(v, w)
    with pytest.raises(ValueError, match="workers"):
        next(train_mwcnn(p, steps=1, workers=-1))


def test_training_from_a_model_copies_it():
    p = hadamard_patterns(16, ratio=0.5)
    start = _tiny(1)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    gen = train_mwcnn(p, steps=2, batch_size=4, seed=0, device="cpu", model=start, group=1,
                      mix=_MIX)
    out = None
    for out in gen:
        pass
    assert out.model is not start
    for k, v in start.state_dict().items():
        assert torch.equal(v, before[k])
    assert out.model.config["training"]["started_from"]["channels"] == [4, 8, 8]


def test_training_and_model_errors():
    p = hadamard_patterns(16, ratio=0.5)
    with pytest.raises(ValueError, match="steps"):
        next(train_mwcnn(p, steps=0))
    with pytest.raises(ValueError, match="modulation_depth"):
        next(train_mwcnn(p, modulation_depth=(0.9, 0.5)))
    with pytest.raises(ValueError, match="weights"):
        next(train_mwcnn([p, p], weights=[1.0]))
    with pytest.raises(ValueError, match="multiples of 8"):
        next(train_mwcnn(hadamard_patterns(4), channels=(4, 4, 4, 4)))
    with pytest.raises(ValueError, match="square"):
        next(train_mwcnn(np.ones((3, 8, 16))))
    with pytest.raises(TypeError, match="MWCNN"):
        reconstruct(np.ones(len(p)), p, method="mwcnn", model="weights.safetensors")
    net = _tiny()
    net.config["sizes"] = [32]
    with pytest.raises(ValueError, match=r"trained for \[32\]"):
        reconstruct(np.ones(len(p)), p, method="mwcnn", model=net)


# ------------------------------------------------------------------- stages (a cascade)
def test_a_cascade_at_full_sampling_is_one_pass(rng):
    # with every Hadamard row measured the consistency step returns the pseudo-inverse, so a
    # second pass sees the first one's input again
    p = hadamard_patterns(16)
    b = simulate_buckets(rng.uniform(0.2, 1, size=(2, 16, 16)), p, modulation_depth=0.8)
    one = reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=_tiny())
    two = reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=_tiny().cascade(2))
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-4 * np.abs(one).max())
    # with part of the rows, the second pass changes the result
    p = hadamard_patterns(16, ratio=0.25)
    b = simulate_buckets(rng.uniform(0.2, 1, size=(2, 16, 16)), p, modulation_depth=0.8)
    one = reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=_tiny())
    two = reconstruct(b, p, method="mwcnn", modulation_depth=0.8, model=_tiny().cascade(2))
    assert np.abs(two - one).max() > 1e-3 * np.abs(one).max()


def test_consistency_keeps_what_the_masks_measured(rng):
    # an untrained cascade (each pass the identity) must return the pseudo-inverse, also for
    # masks that do not measure the mean (speckle): the projection is applied in image units
    p = speckle_patterns(16, 100, rng=2)
    b = simulate_buckets(rng.uniform(0.2, 1, size=(3, 16, 16)), p)
    pinv = reconstruct(b, p, method="pinv")
    net = MWCNN((4, 8, 8), convs=1, stages=3).eval()
    out = reconstruct(b, p, method="mwcnn", model=net)
    np.testing.assert_allclose(out, pinv, rtol=1e-4, atol=1e-4 * np.abs(pinv).max())


def test_cascade_round_trip_and_errors(tmp_path, rng):
    net = _tiny(2).cascade(2)
    with torch.no_grad():
        net.consistency.fill_(0.7)
    assert net.stages == 2 and net.config["stages"] == 2
    path = tmp_path / "cascade.safetensors"
    save_mwcnn(path, net)
    loaded = load_mwcnn(path, device="cpu")
    assert loaded.stages == 2 and loaded.consistency.item() == pytest.approx(0.7)
    raw = path.read_bytes()  # a cascade is format 2: older readers say they are too old
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert json.loads(header["__metadata__"]["torchscope.ghost.mwcnn"])["format_version"] == 2
    p = hadamard_patterns(16, ratio=0.25)
    b = simulate_buckets(rng.uniform(size=(2, 16, 16)), p)
    np.testing.assert_array_equal(reconstruct(b, p, method="mwcnn", model=net),
                                  reconstruct(b, p, method="mwcnn", model=loaded))
    with pytest.raises(ValueError, match="needs project"):
        net(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="stages"):
        MWCNN((4, 8), stages=0)


def test_training_a_cascade_from_a_one_pass_model():
    p = hadamard_patterns(16, ratio=0.25)
    start = _tiny(1)
    gen = train_mwcnn(p, steps=4, batch_size=4, seed=0, device="cpu", model=start, stages=2,
                      group=1, mix=_MIX, lr=1e-2)
    out = None
    for out in gen:
        assert np.isfinite(out.loss)
    assert start.stages == 1 and out.model.stages == 2
    assert out.model.consistency.item() != 1.0  # the consistency weight is learnt too
    assert out.model.config["training"]["started_from"]["stages"] == 1
    with pytest.raises(ValueError, match="stages"):
        next(train_mwcnn(p, steps=1, stages=0))


@pytest.mark.parametrize("kind", ["hadamard", "speckle"])
def test_cascade_matches_consistency_written_in_image_units(kind, rng, monkeypatch):
    # the reference: each pass in the units the network sees (those of the pseudo-inverse),
    # each consistency step x <- x - w (W^T W x - pinv) on images in bucket units
    import torchscope.ghost._mwcnn as mw
    from torchscope.ghost._plan import get_plan, make_frame

    monkeypatch.setattr(mw, "_CHUNK", 4)  # 10 images: three chunks
    p = hadamard_patterns(16, ratio=0.25) if kind == "hadamard" else \
        speckle_patterns(16, 90, rng=3)
    b = simulate_buckets(rng.uniform(0.2, 1, size=(10, 16, 16)), p, photons=500, rng=4)
    net = _tiny(4).cascade(3)
    with torch.no_grad():
        net.consistency.copy_(torch.tensor([0.6, 1.3]))
        out = reconstruct(b, p, method="mwcnn", model=net)
        frame = make_frame(get_plan(p), torch.as_tensor(b, dtype=torch.float64), 1.0, None, 1e-6)
        pinv = frame.pinv()
        mean = pinv.mean(dim=(1, 2), keepdim=True)
        std = pinv.std(dim=(1, 2), keepdim=True)

        def one_pass(x):  # bucket units in and out
            z = ((x - mean) / std).float().unsqueeze(1)
            return net._pass(z).squeeze(1).double() * std + mean

        x = one_pass(pinv)
        for w in (0.6, 1.3):
            x = one_pass(x - w * (frame.project(x) - pinv))
    np.testing.assert_allclose(out, x.numpy(), rtol=1e-4, atol=1e-4 * float(x.abs().max()))


def test_cascade_keeps_device_dtype_and_mode():
    net = _tiny(5).double().train()
    two = net.cascade(2)
    assert two.training and next(two.parameters()).dtype == torch.float64
    assert two.consistency.dtype == torch.float64 and two.stages == 2
    two.config["training"] = {"steps": 1}
    assert "training" not in net.config  # the config is a copy
    assert torch.equal(two.head[0].weight, net.head[0].weight)
