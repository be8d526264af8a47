"""The config sections of the families whose recommender is one module (the others keep theirs in
their package's `config.py`): kept apart from the recommenders so that loading a config imports
neither pandas nor scipy (`genrec models` answers within 2 s)."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLED_ABOVE = 4
"""A family's `output=auto` trains on sampled outputs (CFGAN's generator, the sequence family's
softmax) where the full output costs more than this many times the sampled one: below that the full
form's dense products cost less per output (benchmarks/scale.py)."""


@dataclass(frozen=True)
class PopConfig:
    """Popularity has no hyperparameters."""


@dataclass(frozen=True)
class ItemKNNConfig:
    neighbours: tuple[int, ...] = (10, 25, 50, 100, 200, 400)
    """Neighbourhood sizes tried; the best mean validation NDCG@20 is kept."""
    tuning_repeats: int = 5
    """k is chosen over this many carve-outs of the training data (see `model.ease.tuning_repeats`)."""

    def __post_init__(self) -> None:
        if not self.neighbours or min(self.neighbours) < 1:
            raise ValueError(f"neighbours must be positive integers, got {self.neighbours}")
        if self.tuning_repeats < 1:
            raise ValueError(f"tuning_repeats must be at least 1, got {self.tuning_repeats}")


@dataclass(frozen=True)
class EASEConfig:
    lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 800.0, 1200.0, 2000.0)
    """L2 strengths tried; the one with the best mean validation NDCG@20 is kept."""
    tuning_repeats: int = 5
    """lambda is chosen by the mean validation NDCG@20 over this many carve-outs of the training
    data: the validation split, then more drawn from train + validation with each user's validation
    count kept (a fixed seed). 1: the validation split only."""

    def __post_init__(self) -> None:
        if not self.lambdas or min(self.lambdas) <= 0:
            raise ValueError(f"lambdas must be positive numbers, got {self.lambdas}")
        if self.tuning_repeats < 1:
            raise ValueError(f"tuning_repeats must be at least 1, got {self.tuning_repeats}")


@dataclass(frozen=True)
class LowRankEASEConfig:
    rank: int = 256
    """Rank of the Gram matrix's approximation (memory and scoring time grow with items x rank)."""
    lambdas: tuple[float, ...] = (10.0, 50.0, 200.0, 1000.0, 5000.0)
    """L2 strengths tried; the one with the best validation NDCG@20 is kept."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"rank must be at least 1, got {self.rank}")
        if not self.lambdas or min(self.lambdas) <= 0:
            raise ValueError(f"lambdas must be positive numbers, got {self.lambdas}")


@dataclass(frozen=True)
class TransitionsConfig:
    """Transitions have no hyperparameters: counts of consecutive pairs, ties broken by popularity."""


@dataclass(frozen=True)
class AttributePopConfig:
    """Attribute popularity has no hyperparameters."""


@dataclass(frozen=True)
class ContentKNNConfig:
    neighbours: int = 50
    """The warm items each item is scored by: its most similar by attributes."""

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
