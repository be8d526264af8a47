"""The `features.*` config section: how item attributes become features (`genrec.attributes`).
Kept apart from both so that the config and the featuriser can import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

from genrec.ranges import at_least


@dataclass(frozen=True)
class FeatureConfig:
    """How item attributes become features (`features.*`)."""

    topics: int = 16
    """LDA topics drawn from each free-text column."""
    vocabulary: int = 5000
    """The most frequent words of a free-text column kept: its TF-IDF features and the topics' input."""
    bins: int = 4
    """Quantile bins of each numeric column (a price, a year)."""
    text_words: float = 2.0
    """A text column whose values average at least this many words is free text (topics and words);
    one with fewer is categorical (one-hot: a brand, a department)."""
    seed: int = 0
    """Seed of the topic model."""

    def __post_init__(self) -> None:
        at_least(self, 1, "topics", "vocabulary", "bins", "text_words")
