"""The scanner against the labelled corpus: every plaintext mining conversation found with the
right protocol, every blockchain-p2p conversation reported as a node, nothing else in benign/."""

from __future__ import annotations

from pathlib import Path

import pytest

from minewatch.findings import Verdict
from minewatch.net.evaluation import OUT_OF_SCOPE, CorpusEvaluation, evaluate_corpus, load_labels

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def evaluation(corpus: Path) -> CorpusEvaluation:
    return evaluate_corpus(corpus)


def test_every_labelled_conversation_is_found(evaluation: CorpusEvaluation) -> None:
    assert evaluation.missed == [], evaluation.report()
    assert evaluation.wrong_verdict == [], evaluation.report()


def test_every_found_conversation_has_the_labelled_protocol(evaluation: CorpusEvaluation) -> None:
    assert evaluation.wrong_protocol == [], evaluation.report()
    for name, score in evaluation.per_protocol.items():
        if score.labelled:
            assert score.recall == 1.0, name


def test_nothing_is_reported_in_benign_traffic(evaluation: CorpusEvaluation) -> None:
    assert evaluation.benign_false_positives == [], evaluation.report()


def test_labelled_coins_agree_mostly(evaluation: CorpusEvaluation) -> None:
    # Coins are only read from the traffic; a pool whose name never appears may stay unknown,
    # but a coin we do report must not contradict the label.
    assert evaluation.coin_agree >= 0.95 * evaluation.coin_labelled
    assert all(coin is None for _, coin in evaluation.coin_disagreements), evaluation.report()


def test_all_files_are_read_cleanly(evaluation: CorpusEvaluation) -> None:
    assert evaluation.problems == []
    assert evaluation.files >= 130


def test_labels_are_deduplicated_and_scoped(corpus: Path) -> None:
    rows = load_labels(corpus)
    keys = [(r.file, r.key) for r in rows]
    assert len(keys) == len(set(keys))
    assert not any(
        r.file == "mining/ndpi_mining.pcapng" and r.protocol == "eth-proxy" for r in rows
    )
    assert {r.protocol for r in rows} >= OUT_OF_SCOPE


def test_blockchain_nodes_are_never_called_mining(evaluation: CorpusEvaluation) -> None:
    for protocol in ("bitcoin-p2p", "ethereum-p2p", "monero-p2p", "nano-p2p"):
        score = evaluation.per_protocol[protocol]
        assert score.labelled and score.found_right_protocol == score.labelled
    assert all(f.verdict == Verdict.MINING for _, f in evaluation.unlabelled_in_mining_files)
