"""Model families behind one contract (see `base.Recommender`)."""

from __future__ import annotations

from genrec.config import ModelConfig
from genrec.models.base import Recommender
from genrec.models.cfgan import CFGAN
from genrec.models.pop import Popularity

FAMILIES: dict[str, type[Recommender]] = {"cfgan": CFGAN, "pop": Popularity}


def make_model(cfg: ModelConfig, progress: bool = False) -> Recommender:
    """A fresh, unfitted model of the family `cfg.name`, hyperparameters taken from `cfg`."""
    from genrec.errors import UsageError

    if cfg.name not in FAMILIES:
        raise UsageError(f"Unknown model family {cfg.name!r}; expected one of: {', '.join(FAMILIES)}.")
    if cfg.name == "pop":
        return Popularity()
    fields = {k: v for k, v in vars(cfg).items() if k != "name"}
    return CFGAN(**fields, progress=progress)
