"""Print precision and recall of ``minewatch scan`` per protocol on the labelled corpus.

Usage: ``python benchmarks/eval_corpus.py [CORPUS_DIR]`` (default ``../shared/corpus`` beside the
project). Reproducible: the corpus is fixed and the scanner is deterministic.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from minewatch.net.evaluation import evaluate_corpus

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def main(argv: list[str]) -> int:
    corpus = Path(argv[1]) if len(argv) > 1 else DEFAULT_CORPUS
    if not (corpus / "LABELS.csv").is_file():
        print(f"no labelled corpus at {corpus}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = evaluate_corpus(corpus)
    elapsed = time.perf_counter() - started
    print(result.report())
    print(f"evaluated in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
