"""The gate: a pure function from evaluation results and thresholds to a decision with reasons.

A first model (no champion yet) must beat the popularity baseline on the primary metric. A later
one must beat the popularity baseline and improve on the champion, both scored on the same test
users. Promotion itself is only an alias move, done elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from genrec.config import GateConfig


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    metric: str
    candidate: float
    champion: float | None
    baseline: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


def decide(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    baseline: Mapping[str, float],
    metric: str,
    cfg: GateConfig,
) -> Decision:
    """Promote or not, and why, in sentences that name the numbers."""
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
    beats_champion = True
    if champion is None:
        reasons.append("no champion yet: judged against the popularity baseline alone")
    else:
        champ = float(champion[metric])
        delta = cand - champ
        beats_champion = delta > cfg.min_improvement
        reasons.append(
            f"{metric} {cand:.4f} vs champion {champ:.4f} ({delta:+.4f}; must exceed {cfg.min_improvement:+.4f}): "
            + ("passes" if beats_champion else "fails")
        )
    return Decision(
        promote=beats_baseline and beats_champion,
        reasons=tuple(reasons),
        metric=metric,
        candidate=cand,
        champion=champ,
        baseline=base,
    )
