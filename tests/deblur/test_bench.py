"""The deblur benchmark runs in its quick mode and prints a row per figure of the issue."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_deblur.py"


def test_quick_benchmark_prints_every_row():
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("torchscope.deblur on cpu") and "1 thread(s)" in lines[0]
    for case in ("error_ratio 255x255", "estimate_kernel 96x96, kernel 9",
                 "estimate_kernel batch of 2, kernel 9"):
        rows = [line for line in lines if line.startswith(f"| {case} |")]
        assert len(rows) == 1, case
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        float(cells[1]), float(cells[2])  # wall and CPU seconds are numbers
