"""A tiny run of ``scripts/train_ghost_mwcnn.py``: from scratch, then a cascade fine-tuned from it."""

import hashlib

import pytest

torch = pytest.importorskip("torch")

#: a tiny network, trained for a step or two
TINY = ["--batch-size", "2", "--threads", "1", "--channels", "4,8,8,8", "--no-evaluate"]


def test_two_step_rebuild_writes_both_commands_in_the_card(tmp_path, repo_script):
    from torchscope.ghost import load_mwcnn

    script = repo_script("train_ghost_mwcnn")
    first, second = tmp_path / "first", tmp_path / "second"
    assert script.main(["--steps", "2", "--seed", "0", "--out", str(first), *TINY]) == 0
    init = first / f"{script.NAME}.safetensors"
    assert script.main(["--steps", "1", "--seed", "1", "--stages", "2", "--init", str(init),
                        "--out", str(second), *TINY]) == 0
    weights = second / f"{script.NAME}.safetensors"
    model = load_mwcnn(weights, device="cpu")
    assert model.stages == 2 and model.config["channels"] == [4, 8, 8, 8]
    card = weights.with_suffix(".md").read_text()
    commands = card.split("```bash\n")[1].split("```")[0].strip().splitlines()
    assert len(commands) == 2  # rebuild: the first network, then the cascade from it
    assert "--steps 2 --batch-size 2 --seed 0" in commands[0] and "--stages" not in commands[0]
    assert f"--out {first}" in commands[0]
    assert f"--stages 2 --init {init}" in commands[1] and f"--out {second}" in commands[1]
    assert "--channels" not in commands[1]  # the architecture comes from --init
    assert "Started from a network of 1 pass(es), trained with the same recipe" in card
    trained = [line for line in card.splitlines() if line.startswith(("- Trained", "- Then"))]
    assert len(trained) == 2 and trained[1].startswith("- Then: Trained on")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in card
    assert "data consistency" in card and "runs 2 times" in card


@pytest.mark.parametrize("stages", [None, 2])  # fine-tuning the network itself, or a cascade
def test_timing_run_leaves_the_starting_network_untouched(tmp_path, repo_script, stages):
    """``--minutes`` with ``--init`` first times a throw-away run from the loaded network; the
    real run must then start from the same weights, or the card's command would not rebuild
    the result."""
    import argparse

    from torchscope.ghost import load_mwcnn

    script = repo_script("train_ghost_mwcnn")
    assert script.main(["--steps", "1", "--seed", "0", "--out", str(tmp_path), *TINY]) == 0
    start = load_mwcnn(tmp_path / f"{script.NAME}.safetensors", device="cpu")
    before = {k: v.clone() for k, v in start.state_dict().items()}
    args = argparse.Namespace(batch_size=2, seed=1, device="cpu", lr=1e-3, workers=0,
                              stages=stages)
    steps = script._steps_in(args, (4, 8, 8, 8), 0.05, start, warm=1, timed=2)
    assert steps > 0  # 3 s at the timed rate
    after = start.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
