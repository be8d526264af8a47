"""The gate against a table of cases."""

import pytest

from genrec.config import GateConfig
from genrec.gating import decide

M = "ndcg@20"


@pytest.mark.parametrize(
    "candidate, champion, baseline, cfg, promote",
    [
        (0.30, None, 0.20, GateConfig(), True),  # first model beats popularity
        (0.20, None, 0.20, GateConfig(), False),  # a tie with popularity is not a win
        (0.15, None, 0.20, GateConfig(), False),
        (0.25, None, 0.20, GateConfig(min_lift_over_popularity=0.1), False),
        (0.31, 0.30, 0.20, GateConfig(), True),  # better than the champion
        (0.30, 0.30, 0.20, GateConfig(), False),  # equal to the champion: keep it
        (0.29, 0.30, 0.20, GateConfig(), False),
        (0.305, 0.30, 0.20, GateConfig(min_improvement=0.01), False),
        (0.32, 0.30, 0.20, GateConfig(min_improvement=0.01), True),
        (0.19, 0.10, 0.20, GateConfig(), False),  # beats a weak champion but not popularity
    ],
)
def test_gate_table(candidate, champion, baseline, cfg, promote):
    decision = decide({M: candidate}, None if champion is None else {M: champion}, {M: baseline}, M, cfg)
    assert decision.promote is promote
    assert decision.reasons and all(isinstance(r, str) for r in decision.reasons)
    assert f"{candidate:.4f}" in decision.reasons[0]
    if champion is None:
        assert decision.champion is None and "no champion" in decision.reasons[-1]
    else:
        assert f"{champion:.4f}" in decision.reasons[1]


def test_missing_metric_is_an_error():
    with pytest.raises(ValueError, match="ndcg@20"):
        decide({"ndcg@10": 0.3}, None, {M: 0.1}, M, GateConfig())
