"""Measure the capture scanner against a labelled corpus (``LABELS.csv`` + ``MANIFEST.csv``).

The corpus labels one row per conversation key ``file + client_ip + server_ip + server_port +
transport`` with ``label`` (``mining`` | ``blockchain-p2p``) and ``protocol``. Any conversation
without a row is not mining. Rows whose protocol needs the encrypted-traffic detector
(``stratum-tls``, ``coinhive-websocket``) are left out of the figures and findings on them are
neither credited nor counted as false. Files that merge flows of other files (named by the
corpus README) are de-duplicated before counting.

Used by ``benchmarks/eval_corpus.py`` and the corpus tests, so both print and assert the same
numbers.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from minewatch.findings import Finding, Verdict
from minewatch.net.scan import FileProblem, scan_paths

__all__ = ["OUT_OF_SCOPE", "CorpusEvaluation", "LabelRow", "evaluate_corpus", "load_labels"]

OUT_OF_SCOPE = frozenset({"stratum-tls", "coinhive-websocket"})
MERGED_FILES = frozenset({"mining/ndpi_mining.pcapng"})
_VERDICT_OF_LABEL = {"mining": Verdict.MINING, "blockchain-p2p": Verdict.BLOCKCHAIN_NODE}

Key = tuple[str, str, int, str]


@dataclass(slots=True, frozen=True)
class LabelRow:
    """One labelled conversation of the corpus."""

    file: str
    key: Key
    label: str
    protocol: str
    coin: str | None


@dataclass(slots=True)
class ProtocolScore:
    """Counts behind precision and recall for one protocol."""

    labelled: int = 0
    found: int = 0
    found_right_protocol: int = 0
    reported: int = 0
    reported_correct: int = 0

    @property
    def recall(self) -> float:
        return self.found_right_protocol / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.reported_correct / self.reported if self.reported else 1.0


@dataclass(slots=True)
class CorpusEvaluation:
    """Everything the evaluation found, with the mistakes itemised."""

    per_protocol: dict[str, ProtocolScore] = field(default_factory=dict)
    missed: list[LabelRow] = field(default_factory=list)
    wrong_protocol: list[tuple[LabelRow, Finding]] = field(default_factory=list)
    wrong_verdict: list[tuple[LabelRow, Finding]] = field(default_factory=list)
    benign_false_positives: list[tuple[str, Finding]] = field(default_factory=list)
    unlabelled_in_mining_files: list[tuple[str, Finding]] = field(default_factory=list)
    coin_agree: int = 0
    coin_labelled: int = 0
    coin_disagreements: list[tuple[LabelRow, str | None]] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    files: int = 0
    packets: int = 0

    @property
    def labelled(self) -> int:
        return sum(s.labelled for s in self.per_protocol.values())

    @property
    def found(self) -> int:
        return sum(s.found for s in self.per_protocol.values())

    @property
    def found_right_protocol(self) -> int:
        return sum(s.found_right_protocol for s in self.per_protocol.values())

    def report(self) -> str:
        """A plain-text table of per-protocol precision and recall, then the mistakes."""
        lines = [
            f"{'protocol':<20}{'labelled':>9}{'found':>7}{'right':>7}{'recall':>8}"
            f"{'reported':>10}{'correct':>9}{'precision':>11}",
        ]
        for name, s in sorted(self.per_protocol.items()):
            lines.append(
                f"{name:<20}{s.labelled:>9}{s.found:>7}{s.found_right_protocol:>7}"
                f"{s.recall:>8.3f}{s.reported:>10}{s.reported_correct:>9}{s.precision:>11.3f}"
            )
        total_reported = sum(s.reported for s in self.per_protocol.values())
        total_correct = sum(s.reported_correct for s in self.per_protocol.values())
        recall = self.found_right_protocol / self.labelled if self.labelled else 1.0
        precision = total_correct / total_reported if total_reported else 1.0
        lines.append(
            f"{'ALL':<20}{self.labelled:>9}{self.found:>7}{self.found_right_protocol:>7}"
            f"{recall:>8.3f}{total_reported:>10}{total_correct:>9}{precision:>11.3f}"
        )
        lines.append(
            f"coin agreement: {self.coin_agree}/{self.coin_labelled} labelled coins; "
            f"files {self.files}, packets {self.packets}"
        )
        lines.append(f"false positives in benign/: {len(self.benign_false_positives)}")
        lines.append(f"unlabelled findings in mining/: {len(self.unlabelled_in_mining_files)}")
        for row in self.missed:
            lines.append(f"MISSED {row.file} {row.key} {row.protocol}")
        for row, f in self.wrong_protocol:
            lines.append(
                f"WRONG PROTOCOL {row.file} {row.key} label={row.protocol} got={f.protocol}"
            )
        for row, f in self.wrong_verdict:
            lines.append(f"WRONG VERDICT {row.file} {row.key} label={row.label} got={f.verdict}")
        for path, f in self.benign_false_positives:
            lines.append(f"FALSE POSITIVE {path} {f.key} {f.protocol}")
        for path, f in self.unlabelled_in_mining_files:
            lines.append(f"UNLABELLED {path} {f.key} {f.protocol} {f.verdict}")
        for row, coin in self.coin_disagreements:
            lines.append(f"COIN {row.file} {row.key} label={row.coin} got={coin}")
        for problem in self.problems:
            lines.append(f"PROBLEM {problem}")
        return "\n".join(lines)


def load_labels(corpus: Path) -> list[LabelRow]:
    """Read ``LABELS.csv``, dropping rows of merged files that repeat another file's key."""
    with (corpus / "LABELS.csv").open(newline="", encoding="utf-8") as fh:
        rows = [
            LabelRow(
                file=r["file"],
                key=(r["client_ip"], r["server_ip"], int(r["server_port"]), r["transport"]),
                label=r["label"],
                protocol=r["protocol"],
                coin=r["coin"] or None,
            )
            for r in csv.DictReader(fh)
        ]
    elsewhere = {r.key for r in rows if r.file not in MERGED_FILES}
    return [r for r in rows if not (r.file in MERGED_FILES and r.key in elsewhere)]


def _manifest(corpus: Path) -> dict[str, str]:
    with (corpus / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        return {r["path"]: r["class"] for r in csv.DictReader(fh)}


def evaluate_corpus(
    corpus: Path, progress: Callable[[str], None] | None = None
) -> CorpusEvaluation:
    """Scan every capture of ``corpus`` file by file and score the findings against the labels."""
    labels = load_labels(corpus)
    manifest = _manifest(corpus)
    by_file: dict[str, dict[Key, LabelRow]] = {}
    for row in labels:
        by_file.setdefault(row.file, {})[row.key] = row
    result = CorpusEvaluation()
    counts: Counter[str] = Counter()
    for rel, klass in sorted(manifest.items()):
        if rel in MERGED_FILES:
            continue
        report = scan_paths([corpus / rel])
        result.files += report.files
        result.packets += report.packets
        result.problems.extend(report.problems)
        if progress is not None:
            progress(rel)
        rows = by_file.get(rel, {})
        seen: set[Key] = set()
        for f in report.findings:
            label = rows.get(f.key)
            if label is not None and label.protocol in OUT_OF_SCOPE:
                continue
            score = result.per_protocol.setdefault(f.protocol, ProtocolScore())
            score.reported += 1
            if label is None:
                bucket = result.benign_false_positives if klass != "mining" else None
                target = bucket if bucket is not None else result.unlabelled_in_mining_files
                target.append((rel, f))
                continue
            seen.add(label.key)
            if f.verdict != _VERDICT_OF_LABEL[label.label]:
                result.wrong_verdict.append((label, f))
                continue
            label_score = result.per_protocol.setdefault(label.protocol, ProtocolScore())
            label_score.found += 1
            if f.protocol == label.protocol:
                score.reported_correct += 1
                label_score.found_right_protocol += 1
            else:
                result.wrong_protocol.append((label, f))
            if label.coin:
                result.coin_labelled += 1
                if f.coin == label.coin:
                    result.coin_agree += 1
                else:
                    result.coin_disagreements.append((label, f.coin))
        for row in rows.values():
            if row.protocol in OUT_OF_SCOPE:
                continue
            counts[row.protocol] += 1
            if row.key not in seen:
                result.missed.append(row)
    for protocol, n in counts.items():
        result.per_protocol.setdefault(protocol, ProtocolScore()).labelled = n
    return result
