"""The few exceptions genrec raises on purpose, each with one job and one exit code."""

from __future__ import annotations


class GenrecError(Exception):
    """Base class: an expected failure with a sentence meant for the user."""

    exit_code = 1


class UsageError(GenrecError):
    """The command line or a path asked for is wrong (not a readable file, bad --set)."""

    exit_code = 2


class DataError(GenrecError):
    """Input data is unreadable or fails validation; nothing was trained or registered."""

    exit_code = 3

    def __init__(self, message: str, data_docs: str | None = None, outcomes: list[dict] | None = None,
                 report=None):
        super().__init__(message)
        self.data_docs = data_docs
        self.outcomes = outcomes or []
        """Every expectation's result (pass and fail) of the suite that rejected the data."""
        self.report = report
        """The rejecting suite's report, where a suite rejected it."""


class NotFoundError(GenrecError):
    """A registered model, version or alias that was asked for does not exist."""

    exit_code = 4


class NotFittedError(GenrecError):
    """A recommender was used before `fit`."""


class TrainingDivergedError(GenrecError):
    """Training produced non-finite losses or scores."""


class ServingCheckError(GenrecError):
    """A logged model, loaded back as a server would, cannot answer its own input example."""


class UnloadableModelError(GenrecError):
    """A registered model exists but cannot be loaded by this genrec (an older format, a missing
    or corrupt artifact); the message names the version and what to do."""

    exit_code = 4
