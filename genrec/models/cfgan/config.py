"""CFGAN's config section (`model.cfgan.*`, or `model.*` when `model.name=cfgan`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from genrec.models.configs import SAMPLED_ABOVE
from genrec.ranges import at_least


@dataclass(frozen=True)
class CFGANConfig:
    """CFGAN's hyperparameters; the defaults are the authors' ML-100K settings, user-based."""

    mode: Literal["user", "item"] = "user"
    """The condition: `user` (a user's vector of items; scores any history, so it can be served) or
    `item` (an item's vector of users, as the authors' presets; scores only the users it trained on,
    so for `genrec evaluate` and benchmarks, not for `genrec run`)."""
    scheme: Literal["ZR", "PM", "ZP"] = "ZP"
    """Negative sampling: ZR (zero reconstruction), PM (partial masking) or ZP (both)."""
    loss: Literal["bce", "wgan-gp"] = "bce"
    """`bce` (as published: D a classifier, cross-entropy) or `wgan-gp` (D a critic with a Wasserstein
    loss and a gradient penalty; Adam without momentum, betas 0, 0.9)."""
    gp_weight: float = 1.0
    """With loss=wgan-gp: weight of the gradient penalty."""
    hidden_g: int = 400
    """Width of the generator's hidden layers."""
    hidden_d: int = 125
    """Width of the discriminator's hidden layers."""
    layers_g: int = 1
    """Number of hidden layers of the generator."""
    layers_d: int = 1
    """Number of hidden layers of the discriminator."""
    zr_ratio: float = 0.7
    """Share of a user's unobserved items pushed towards zero by the ZR term."""
    pm_ratio: float = 0.7
    """Share of a user's unobserved items the discriminator sees (partial masking)."""
    zr_coefficient: float = 0.03
    """Weight of the ZR term in the generator's loss."""
    input_dropout: float = 0.0
    """Share of a user's history hidden from the generator's input during training (0: as published)."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the generator's weights with this decay per step and
    validate and serve it (0: the raw generator, as published)."""
    reg_g: float = 0.001
    """L2 penalty on the generator's weights."""
    reg_d: float = 0.0
    """L2 penalty on the discriminator's weights."""
    lr_g: float = 1e-4
    """Adam learning rate of the generator."""
    lr_d: float = 1e-4
    """Adam learning rate of the discriminator."""
    batch_g: int = 32
    """Rows per generator step."""
    batch_d: int = 64
    """Rows per discriminator step."""
    g_steps: int = 4
    """Passes over the rows for G per epoch."""
    d_steps: int = 2
    """Passes over the rows for D per epoch."""
    attributes: bool = False
    """The generator's output layer adds an encoder of each item's attributes (`Dataset.features`)
    to its weights for that item, so that items without interactions get scores
    (`model.attributes=true`; user-based only)."""
    id_dropout: float = 0.0
    """With attributes: the share of warm items whose id weights are left out at each generator
    step, so that attributes learn to stand for an item alone (as for a cold one)."""
    output: Literal["auto", "full", "sampled"] = "auto"
    """Where training computes the generator's output: `full`, every item of every row (as
    published; an epoch costs rows x items); `sampled`, each row's items and `negatives` items
    drawn for each batch (an epoch costs interactions + rows x negatives;
    genrec/models/cfgan/sampled.py); `auto`, sampled where full would compute more than
    SAMPLED_ABOVE times as many outputs."""
    negatives: int = 1000
    """With output=sampled: items drawn at each step, shared by the batch's rows (each row leaves
    out those it has)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "hidden_g", "hidden_d", "batch_g", "batch_d", "negatives")
        at_least(self, 0, "layers_g", "layers_d", "g_steps", "d_steps")
        for name in ("zr_ratio", "pm_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:  # an average of decay 1 would never move from the initial weights
            raise ValueError(f"ema_decay must be at least 0 and below 1, got {self.ema_decay}")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"id_dropout must be at least 0 and below 1, got {self.id_dropout}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"input_dropout must be at least 0 and below 1, got {self.input_dropout}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)}")
        if self.attributes and self.mode == "item":
            raise ValueError("attributes describe items, and an item-based generator's outputs are users: "
                             "use mode=user with attributes")
        for name in ("gp_weight", "zr_coefficient", "reg_g", "reg_d"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")

    def sampled(self, rows) -> bool:
        """Whether to train on sampled outputs for the training matrix `rows` (see `output`)."""
        if self.output != "auto":
            return self.output == "sampled"
        n_rows, width = rows.shape
        return n_rows * width > SAMPLED_ABOVE * (n_rows * min(self.negatives, width) + rows.nnz)

    def capabilities(self, declared):
        """The item-based form completes items' vectors of the users it trained on: it scores no new
        history and cannot be served."""
        if self.mode == "item":
            return replace(declared, scores_histories=False, servable=False,
                           limited_by="model.cfgan.mode=item: an item-based generator completes items' vectors of the "
                                      "users it trained on")
        return declared
