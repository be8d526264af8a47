"""The gate against a table of cases."""

import numpy as np
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


def test_bootstrap_promotes_a_consistent_gain():
    rng = np.random.default_rng(0)
    champion = rng.random(500)
    candidate = champion + 0.05  # every user gains 0.05
    cfg = GateConfig(min_improvement=0.01, bootstrap_samples=500)
    d = decide({M: candidate.mean()}, {M: champion.mean()}, {M: 0.0}, M, cfg, paired=(candidate, champion))
    assert d.promote and d.interval == pytest.approx((0.05, 0.05))
    assert "95% interval" in d.reasons[1] and "500 users" in d.reasons[1]


def test_bootstrap_rejects_noise_around_zero():
    rng = np.random.default_rng(1)
    champion = rng.random(400)
    candidate = champion + rng.normal(0, 0.2, 400)
    cfg = GateConfig(bootstrap_samples=1000)
    d = decide({M: candidate.mean()}, {M: champion.mean()}, {M: 0.0}, M, cfg, paired=(candidate, champion))
    low, high = d.interval
    assert low < 0 < high and not d.promote


def test_bootstrap_is_not_fooled_by_one_user():
    # One user gains 10, the other 99 nothing: the mean gain is 0.1, well above a margin of 0.01,
    # but a third of the resamples leave that user out, so the interval's lower end is 0: no promotion.
    champion = np.zeros(100)
    candidate = np.zeros(100)
    candidate[0] = 10.0
    cfg = GateConfig(min_improvement=0.01, bootstrap_samples=2000)
    by_mean = decide({M: 0.1}, {M: 0.0}, {M: 0.0}, M, GateConfig(min_improvement=0.01, bootstrap_samples=0))
    assert by_mean.promote
    d = decide({M: 0.1}, {M: 0.0}, {M: 0.0}, M, cfg, paired=(candidate, champion))
    assert d.interval[0] == 0.0 and not d.promote


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.random(300), rng.random(300)
    cfg = GateConfig(bootstrap_samples=300, bootstrap_seed=7)
    first = decide({M: a.mean()}, {M: b.mean()}, {M: 0.0}, M, cfg, paired=(a, b)).interval
    assert decide({M: a.mean()}, {M: b.mean()}, {M: 0.0}, M, cfg, paired=(a, b)).interval == first


@pytest.mark.parametrize(
    "candidate, champion, cfg, promote, failing",
    [
        ({M: 0.3, "precision@5": 0.04}, None, GateConfig(floors=("precision@5:0.05",)), False, "floor: precision@5"),
        ({M: 0.3, "precision@5": 0.06}, None, GateConfig(floors=("precision@5:0.05",)), True, None),
        # better on the primary metric, but catalogue coverage falls by 0.10 (> 0.05 allowed)
        ({M: 0.32, "coverage@20": 0.10}, {M: 0.30, "coverage@20": 0.20}, GateConfig(), False, "guardrail: coverage@20"),
        ({M: 0.32, "coverage@20": 0.17}, {M: 0.30, "coverage@20": 0.20}, GateConfig(), True, None),
    ],
)
def test_floors_and_guardrails(candidate, champion, cfg, promote, failing):
    d = decide(candidate, champion, {M: 0.1}, M, cfg)
    assert d.promote is promote
    if failing:
        assert any(r.startswith(failing) and r.endswith("fails") for r in d.reasons)


def test_malformed_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="ndcg@20:0.05"):
        decide({M: 0.3}, None, {M: 0.1}, M, GateConfig(floors=("ndcg@20",)))


@pytest.mark.parametrize(
    "rule, candidate, champion, promote",
    [
        # relative, higher is better: recall must rise by at least 10% of the champion's 0.20
        ("recall@20:higher:10%", 0.215, 0.20, False),  # +7.5%
        ("recall@20:higher:10%", 0.225, 0.20, True),  # +12.5%
        # absolute, a bounded drop allowed
        ("recall@20:higher:-0.02", 0.185, 0.20, True),
        ("recall@20:higher:-0.02", 0.175, 0.20, False),
        # lower is better: the same numbers judged the other way round
        ("recall@20:lower:10%", 0.175, 0.20, True),  # fell 12.5%: an improvement
        ("recall@20:lower:10%", 0.225, 0.20, False),
        ("recall@20:lower:-5%", 0.205, 0.20, True),  # rose 2.5%, 5% allowed
        ("recall@20:lower:-5%", 0.215, 0.20, False),
    ],
)
def test_change_thresholds_with_direction(rule, candidate, champion, promote):
    cfg = GateConfig(changes=(rule,), bootstrap_samples=0)
    d = decide({M: 0.32, "recall@20": candidate}, {M: 0.30, "recall@20": champion}, {M: 0.1}, M, cfg)
    assert d.promote is promote
    (reason,) = [r for r in d.reasons if r.startswith("change: recall@20")]
    assert reason.endswith("passes" if promote else "fails")


def test_change_thresholds_wait_for_a_champion():
    cfg = GateConfig(changes=("recall@20:higher:50%",), guardrails=("coverage@20:10%",))
    assert decide({M: 0.3, "recall@20": 0.1, "coverage@20": 0.1}, None, {M: 0.1}, M, cfg).promote


def test_relative_guardrail():
    cfg = GateConfig(guardrails=("coverage@20:10%",), bootstrap_samples=0)
    champion = {M: 0.30, "coverage@20": 0.20}
    assert decide({M: 0.32, "coverage@20": 0.185}, champion, {M: 0.1}, M, cfg).promote  # -7.5%
    assert not decide({M: 0.32, "coverage@20": 0.175}, champion, {M: 0.1}, M, cfg).promote  # -12.5%


@pytest.mark.parametrize(
    "cfg, message",
    [
        (GateConfig(changes=("recall@20:up:1%",)), "higher or lower"),
        (GateConfig(changes=("recall@20:higher",)), "recall@20:higher:1%"),
        (GateConfig(guardrails=("coverage@20:-0.05",)), "not negative"),
        (GateConfig(changes=("hitrate@20:higher:0",)), "did not compute"),
    ],
)
def test_malformed_change_rules(cfg, message):
    with pytest.raises(ValueError, match=message):
        decide({M: 0.3, "recall@20": 0.2}, {M: 0.2, "recall@20": 0.2}, {M: 0.1}, M, cfg)
