"""The registry of model families: name -> config section, recommender class, capabilities.

Adding a family is one module or package (its typed config section and its recommender) plus one
entry in `FAMILIES`. Config loading, the flows, the CLI, the registry and serving read what they
need from here; none of them tests a family's name. A family's recommender class is imported only
when a model is made, so that loading the config does not import torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genrec.errors import UsageError
from genrec.models.cfgan.config import CFGANConfig
from genrec.models.configs import (AttributePopConfig, ContentKNNConfig, EASEConfig, ItemKNNConfig,
                                   LowRankEASEConfig, PopConfig, TransitionsConfig)
from genrec.models.seqgan.config import SeqGANConfig

if TYPE_CHECKING:
    from genrec.models.base import Capabilities, ModelState, Recommender


@dataclass(frozen=True)
class Family:
    name: str
    config: type
    """The family's config section (a frozen dataclass with a docstring per field)."""
    recommender: str
    """`module:Class` of its recommender."""
    summary: str
    train: dict[str, Any] = field(default_factory=dict)
    """`train.*` settings this family starts from where the preset, the config file and `--set`
    leave them unset (e.g. a patience that suits how fast it learns)."""

    def recommender_class(self) -> type["Recommender"]:
        module, _, cls = self.recommender.partition(":")
        return getattr(importlib.import_module(module), cls)


DEFAULT = "cfgan"
"""The family a config names unless it names another."""

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("pop", PopConfig, "genrec.models.pop:Popularity", "the most interacted-with items"),
    Family("itemknn", ItemKNNConfig, "genrec.models.itemknn:ItemKNN",
           "item-item cosine similarity, each item keeping its k nearest"),
    Family("transitions", TransitionsConfig, "genrec.models.transitions:Transitions",
           "item-to-item transitions: what came right after the history's last item"),
    Family("ease", EASEConfig, "genrec.models.ease:EASE", "EASE (Steck 2019), a closed-form item-item model"),
    Family("ease-lowrank", LowRankEASEConfig, "genrec.models.lowrank:LowRankEASE",
           "EASE on a low-rank approximation of the item-item Gram matrix, for large catalogues"),
    Family("cfgan", CFGANConfig, "genrec.models.cfgan.model:CFGAN",
           "CFGAN (Chae et al. 2018), a GAN whose generator outputs a user's preference vector"),
    Family("seqgan", SeqGANConfig, "genrec.models.seqgan.model:SeqGAN",
           "a causal Transformer (or GRU) over a user's history in order, trained by cross-entropy over all items "
           "and then against a discriminator",
           # Cross-entropy learns from every position of every history each epoch, and what is
           # validated is a moving average of the weights: its validation curve is smooth and peaks
           # early, so it needs far less patience than a GAN on vectors.
           train={"patience": 5}),
    Family("attribute-pop", AttributePopConfig, "genrec.models.content:AttributePop",
           "the popularity of an item's attributes: what cold items of a popular kind get"),
    Family("content-knn", ContentKNNConfig, "genrec.models.content:ContentKNN",
           "an item scored like its nearest warm items by attributes"),
)}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UsageError(f"Unknown model family {name!r}; expected one of: {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def capabilities(name: str, section: Any) -> "Capabilities":
    """What family `name` can do with its config section `section`."""
    return family(name).recommender_class().capabilities_for(section)


def make_model(cfg) -> "Recommender":
    """A fresh, unfitted model for `cfg` (the whole Config): family `cfg.model.name` with its section
    and the training loop's settings, inside a blend with `cfg.model.blend` if one is named."""
    model_cfg = cfg.model
    first = _make(model_cfg.name, model_cfg.section(), cfg.train)
    if model_cfg.blend == "none":
        return first
    from genrec.models.blend import Blend

    second = _make(model_cfg.blend, model_cfg.section(model_cfg.blend), cfg.train)
    large = None if model_cfg.blend_large == "none" else _make(
        model_cfg.blend_large, model_cfg.section(model_cfg.blend_large), cfg.train)
    return Blend(first, second, model_cfg.blend_weights, model_cfg.blend_max_items, large)


def _make(name: str, section: Any, train: Any) -> "Recommender":
    return family(name).recommender_class()(section, train)


def section_from_dict(name: str, values: dict[str, Any]) -> Any:
    """Family `name`'s config section from JSON-able values (lists become tuples)."""
    return family(name).config(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def rebuild(name: str, config: dict[str, Any], state: "ModelState") -> "Recommender":
    """A fitted model of family `name` from its config section's values and its state."""
    return family(name).recommender_class().from_state(section_from_dict(name, config), state)
