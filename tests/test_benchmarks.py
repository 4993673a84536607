"""The benchmark script runs (small sizes) and prints a table row per case and shape."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_filters.py"
# the cases the issue asks for: (row name, torchscope function)
REQUIRED = [
    ("gaussian sigma 3", "gaussian"),
    ("median radius 2", "median"),
    ("erosion radius 3", "erosion"),
    ("white_tophat radius 5", "white_tophat"),
    ("difference_of_gaussians sigma 2", "difference_of_gaussians"),
    ("threshold otsu", "threshold"),
]


def test_quick_benchmark_prints_a_row_per_case(tmp_path):
    table = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--threads", "1",
         "--markdown", str(table)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("torchscope on cpu")
    assert "| case | shape | torchscope ms | peer ms | ratio | max abs diff |" in lines
    for name, function in REQUIRED:
        rows = [line for line in lines if line.startswith(f"| {name} |")]
        skipped = any(line.startswith("note: skipped") and f".{function} " in line
                      for line in lines)
        assert len(rows) == 2 or skipped, f"no rows and no note for {name!r}"
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert len(cells) == 6
            float(cells[2]), float(cells[3]), float(cells[4])  # times and ratio are numbers
            assert float(cells[5]) < 1e-4, f"{name}: torchscope and peer disagree ({row})"
    assert table.read_text().count("\n| ") >= 2


# ------------------------------------------------------------------------------- ghost (issue 3)
GHOST = Path(__file__).resolve().parents[1] / "benchmarks"


def _table_rows(lines, first_cell):
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if line.startswith(f"| {first_cell}")]


def test_quick_ghost_benchmark_prints_times_and_psnr():
    result = subprocess.run(
        [sys.executable, str(GHOST / "bench_ghost.py"), "--quick", "--threads", "1"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("torchscope.ghost on cpu")
    for method in ("pinv", "gi", "dgi", "tv"):
        [row] = [r for r in _table_rows(lines, method) if r[0].split()[0] == method][:1]
        assert float(row[1]) > 0 and float(row[2]) > 0  # ms per image, first call
    [ideal] = _table_rows(lines, "ideal masks")
    assert all(float(v) > 20 for v in ideal[1:])  # PSNR in dB, reconstructions that work


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("spyrit") is None, reason="spyrit not installed")
def test_quick_spyrit_benchmark_runs_on_the_same_patterns():
    result = subprocess.run(
        [sys.executable, str(GHOST / "bench_ghost_spyrit.py"), "--quick", "--threads", "1"],
        check=False, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "SPyRiT's H equals our 768 patterns, row by row: yes" in lines
    rows = {r[0]: r for r in _table_rows(lines, "") if r[0] and r[0] != "method"
            and not r[0].startswith("---")}
    for name in ("spyrit pinv", "spyrit DC", "torchscope pinv"):
        ms, psnr_camera = float(rows[name][1]), float(rows[name][2])
        assert ms > 0 and psnr_camera > 20
    # the same data and the same least-squares solution: the two pseudo-inverses agree
    for ours, theirs in zip(rows["torchscope pinv"][2:], rows["spyrit pinv"][2:]):
        assert abs(float(ours) - float(theirs)) <= 0.011  # printed with 2 decimals


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run_quick(script, *args):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        check=False, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_quick_ptycho_benchmark_prints_times_and_errors():
    lines = _run_quick("bench_ptycho.py", "--no-peers")
    rows = [r for r in _table_rows(lines, "torchscope")]
    cases = {r[1] for r in rows}
    assert {"epie, 1 mode", "rpie, 1 mode", "rpie, refinement adam"} <= cases
    for row in rows:
        seconds, nrmse = float(row[2]), float(row[3])
        assert seconds > 0 and 0 < nrmse < 1  # a few iterations already improve on nothing
    assert any("never grows" in line for line in lines)


def test_quick_ptycho_speed_only_runs_the_engine_cases_alone():
    lines = _run_quick("bench_ptycho.py", "--no-peers", "--speed-only")
    cases = {r[1] for r in _table_rows(lines, "torchscope")}
    assert cases == {"epie, 1 mode", "rpie, 1 mode", "rpie + L-BFGS finish, 1 mode",
                     "rpie, 3 modes (3-mode data)", "rpie + L-BFGS finish, 3 modes (3-mode data)"}
    assert not any("never grows" in line for line in lines)


def test_quick_deblur_benchmark_prints_times():
    lines = _run_quick("bench_deblur.py")
    rows = {r[0]: r for r in _table_rows(lines, "") if r[0] and r[0] != "case"
            and not r[0].startswith("---")}
    assert "error_ratio 255x255" in rows
    assert all(float(r[1]) > 0 for r in rows.values())
