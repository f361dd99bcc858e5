"""Print precision, recall and onset error of ``minewatch power screen`` on a labelled set.

Usage: ``python benchmarks/eval_power.py [FOLDER]``; without a folder the benchmark set is built
(``benchmarks/build_power_set.py``, seed 2026, 28 days) into a temporary folder first.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from minewatch.power.evaluation import evaluate_power  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        folder = Path(argv[1])
    else:
        from minewatch.power.benchmark_set import build_benchmark_set, write_benchmark_set

        folder = Path(tempfile.mkdtemp(prefix="minewatch-power-"))
        write_benchmark_set(build_benchmark_set(seed=2026, days=28), folder)
    started = time.perf_counter()
    result = evaluate_power(folder)
    print(result.report())
    print(f"screened in {time.perf_counter() - started:.1f} s ({folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
