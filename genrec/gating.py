"""The gate: a pure function from evaluation results and thresholds to a decision with reasons.

A first model (no champion yet) must beat the popularity baseline on the primary metric and reach
the value floors. A later one must also improve on the champion, both scored on the same test
users: when per-user values are given, by a seeded paired bootstrap over users whose 95% interval
of the difference must lie above the configured margin; otherwise by the mean difference. Change
thresholds (absolute or relative, with a better direction per metric) and guardrails compare
further metrics with the champion's.
Promotion itself is only an alias move, done elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from genrec.config import GateConfig, change_rules, metric_rules


def paired_bootstrap(candidate: np.ndarray, champion: np.ndarray, samples: int, seed: int,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean per-user difference (candidate - champion) and its bootstrap percentile interval,
    resampling users with replacement (the same users for both models in each sample)."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(champion, dtype=np.float64)
    if diff.shape != np.shape(champion) or diff.ndim != 1 or len(diff) == 0:
        raise ValueError("paired bootstrap needs two equally long, non-empty per-user arrays")
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // len(diff))  # bounded memory whatever the number of users
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        means[start : start + n] = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    metric: str
    candidate: float
    champion: float | None
    baseline: float
    interval: tuple[float, float] | None = None
    """95% paired-bootstrap interval of candidate - champion, when it was computed."""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return d


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    baseline: Mapping[str, float],
    metric: str,
    cfg: GateConfig,
    paired: tuple[np.ndarray, np.ndarray] | None = None,
) -> Decision:
    """Promote or not, and why, in sentences that name the numbers. `paired` holds the candidate's
    and the champion's per-user values of `metric` on the same users, in the same order."""
    for name, result in (("candidate", candidate), ("baseline", baseline), ("champion", champion)):
        if result is not None and metric not in result:
            raise ValueError(f"The {name}'s results have no {metric!r}.")
    cand = float(candidate[metric])
    base = float(baseline[metric])
    reasons: list[str] = []
    lift = cand - base
    beats_baseline = lift > cfg.min_lift_over_popularity
    reasons.append(
        f"{metric} {cand:.4f} vs popularity {base:.4f} ({lift:+.4f}; must exceed {cfg.min_lift_over_popularity:+.4f}): "
        + ("passes" if beats_baseline else "fails")
    )
    champ = None
    interval = None
    beats_champion = True
    if champion is None:
        reasons.append("no champion yet: judged against the popularity baseline alone")
    elif paired is not None and len(paired[0]) == 0:
        champ = float(champion[metric])
        beats_champion = False
        reasons.append("no test interaction is left that the champion cannot have trained on: no fair comparison, "
                       "so no promotion")
    elif paired is not None and cfg.bootstrap_samples > 0:
        champ = float(champion[metric])
        delta, low, high = paired_bootstrap(paired[0], paired[1], cfg.bootstrap_samples, cfg.bootstrap_seed)
        interval = (low, high)
        beats_champion = low > cfg.min_improvement
        reasons.append(
            f"{metric} {cand:.4f} vs champion {champ:.4f}: difference {delta:+.4f}, 95% interval "
            f"[{low:+.4f}, {high:+.4f}] ({cfg.bootstrap_samples} paired bootstrap samples over {len(paired[0])} "
            f"users; its lower end must exceed {cfg.min_improvement:+.4f}): " + ("passes" if beats_champion else "fails")
        )
    else:
        champ = float(champion[metric])
        delta = cand - champ
        beats_champion = delta > cfg.min_improvement
        reasons.append(
            f"{metric} {cand:.4f} vs champion {champ:.4f} ({delta:+.4f}; must exceed {cfg.min_improvement:+.4f}): "
            + ("passes" if beats_champion else "fails")
        )
    passes_rules = True
    for metric_name, floor in metric_rules(cfg.floors, "floors"):
        if metric_name not in candidate:
            raise ValueError(f"gate.floors names {metric_name!r}, which the evaluation did not compute.")
        value = float(candidate[metric_name])
        ok = value >= floor
        passes_rules &= ok
        reasons.append(f"floor: {metric_name} {value:.4f} must be at least {floor:.4f}: " + ("passes" if ok else "fails"))
    if champion is not None:
        for rule in change_rules(cfg):
            if rule.metric not in candidate or rule.metric not in champion:
                if rule.source == "guardrails":
                    continue  # a default guardrail on a metric this evaluation did not compute
                raise ValueError(f"gate.changes names {rule.metric!r}, which the evaluation did not compute.")
            value, ref = float(candidate[rule.metric]), float(champion[rule.metric])
            change = rule.change(value, ref)
            ok = change >= rule.amount
            passes_rules &= ok
            label = "guardrail" if rule.source == "guardrails" else "change"
            reasons.append(f"{label}: {rule.metric} {value:.4f} vs champion {ref:.4f} ({rule.describe(change)}, "
                           f"{rule.direction} is better; must change by at least {rule.describe()}): "
                           + ("passes" if ok else "fails"))
    return Decision(
        promote=beats_baseline and beats_champion and passes_rules,
        reasons=tuple(reasons),
        metric=metric,
        candidate=cand,
        champion=champ,
        baseline=base,
        interval=interval,
    )
