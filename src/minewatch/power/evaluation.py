"""Score ``minewatch power screen`` against a labelled set (``labels.csv``).

Per account, positive means ``label == mining``. Two readings of the verdicts are reported:
``mining`` alone (what the grid company acts on) and ``mining`` or ``suspect`` (what goes on the
inspection list). Onset error is measured on mining accounts whose label has an onset and that
the screen found, in days. Used by ``benchmarks/eval_power.py`` and the tests.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from minewatch.power.screen import ScreenResult, screen

__all__ = ["PowerEvaluation", "evaluate_power"]


@dataclass(slots=True)
class PowerEvaluation:
    """Confusion counts, onset errors and the mistakes, itemised."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    tp_listed: int = 0
    fp_listed: int = 0
    onset_errors_days: list[float] = field(default_factory=list)
    onsets_missing: int = 0
    mistakes: list[str] = field(default_factory=list)
    by_category: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def listed_precision(self) -> float:
        listed = self.tp_listed + self.fp_listed
        return self.tp_listed / listed if listed else 1.0

    @property
    def listed_recall(self) -> float:
        positives = self.tp + self.fn
        return self.tp_listed / positives if positives else 1.0

    @property
    def onset_within_one_day(self) -> float:
        errors = self.onset_errors_days
        found = sum(e <= 1.0 for e in errors)
        total = len(errors) + self.onsets_missing
        return found / total if total else 1.0

    def report(self) -> str:
        errors = sorted(self.onset_errors_days)
        median = errors[len(errors) // 2] if errors else float("nan")
        lines = [
            f"accounts: {self.tp + self.fp + self.fn + self.tn} "
            f"(mining {self.tp + self.fn}, normal {self.fp + self.tn})",
            f"verdict mining:            precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(TP {self.tp}, FP {self.fp}, FN {self.fn}, TN {self.tn})",
            f"mining or suspect listed:  precision {self.listed_precision:.3f}  "
            f"recall {self.listed_recall:.3f}",
            f"onset within ±1 day: {self.onset_within_one_day:.3f} "
            f"({len(errors)} found, {self.onsets_missing} without onset; median error "
            f"{median:.2f} d, worst {errors[-1] if errors else float('nan'):.2f} d)",
            "by category (label category -> verdict):",
        ]
        for (category, verdict), n in sorted(self.by_category.items()):
            lines.append(f"  {category:<22} {verdict:<8} {n}")
        lines += [f"  {m}" for m in self.mistakes]
        return "\n".join(lines)


def _labels(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return {row["account_id"]: row for row in csv.DictReader(fh)}


def score(result: ScreenResult, labels: dict[str, dict[str, str]]) -> PowerEvaluation:
    """Compare screen results with labels by account."""
    ev = PowerEvaluation()
    for a in result.accounts:
        v = a.verdict
        label = labels.get(v.account_id)
        if label is None:
            continue
        positive = label["label"] == "mining"
        category = label.get("category") or label.get("kind") or ""
        ev.by_category[(category, v.verdict)] += 1
        said = v.verdict == "mining"
        listed = v.verdict != "normal"
        if positive and said:
            ev.tp += 1
        elif positive:
            ev.fn += 1
            ev.mistakes.append(f"MISSED {v.account_id} {category} score {v.score}")
        elif said:
            ev.fp += 1
            ev.mistakes.append(
                f"FALSE {v.account_id} {category} score {v.score}: {'; '.join(v.explanation[:2])}"
            )
        else:
            ev.tn += 1
        if listed:
            if positive:
                ev.tp_listed += 1
            else:
                ev.fp_listed += 1
        if positive and said and label.get("onset"):
            truth = datetime.fromisoformat(label["onset"])
            if v.onset is None:
                ev.onsets_missing += 1
                ev.mistakes.append(f"NO ONSET {v.account_id} {category} (truth {label['onset']})")
            else:
                ev.onset_errors_days.append(abs((v.onset - truth).total_seconds()) / 86400)
    return ev


def evaluate_power(folder: Path) -> PowerEvaluation:
    """Screen ``readings.csv.gz`` of ``folder`` (the input contract's form: timestamps with the
    meters' UTC offset) with its ``accounts.csv`` and score against ``labels.csv``."""
    readings = folder / "readings.csv.gz"
    result = screen(readings, folder / "accounts.csv")
    return score(result, _labels(folder / "labels.csv"))
