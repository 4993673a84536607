"""A tiny run of ``scripts/train_ghost_mwcnn.py``: from scratch, then a cascade fine-tuned from it."""

import hashlib

import pytest

torch = pytest.importorskip("torch")


def test_two_step_rebuild_writes_both_commands_in_the_card(tmp_path, repo_script):
    from torchscope.ghost import load_mwcnn

    script = repo_script("train_ghost_mwcnn")
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--batch-size", "2", "--threads", "1", "--channels", "4,8,8,8", "--no-evaluate"]
    assert script.main(["--steps", "2", "--seed", "0", "--out", str(first), *common]) == 0
    init = first / f"{script.NAME}.safetensors"
    assert script.main(["--steps", "1", "--seed", "1", "--stages", "2", "--init", str(init),
                        "--out", str(second), *common]) == 0
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
