"""Model families behind one contract (see `base.Recommender`)."""

from __future__ import annotations

from genrec.config import ModelConfig
from genrec.models.base import Recommender
from genrec.models.cfgan import CFGAN
from genrec.models.ease import EASE
from genrec.models.itemknn import ItemKNN
from genrec.models.pop import Popularity

FAMILIES: dict[str, type[Recommender]] = {"cfgan": CFGAN, "ease": EASE, "itemknn": ItemKNN, "pop": Popularity}
CFGAN_FIELDS = (
    "device", "seed", "epochs", "patience", "hidden_g", "hidden_d", "layers_g", "layers_d", "scheme", "loss",
    "gp_weight", "noise_dim", "mode", "init", "refit", "blend", "blend_weights", "blend_max_items", "target",
    "lr_item_item", "ease_lambdas", "tuning_repeats", "zr_ratio", "pm_ratio", "zr_coefficient", "input_dropout",
    "ema_decay", "reg_g", "reg_d", "lr_g", "lr_d", "batch_g", "batch_d", "g_steps", "d_steps",
)


def make_model(cfg: ModelConfig, progress: bool = False) -> Recommender:
    """A fresh, unfitted model of the family `cfg.name`, hyperparameters taken from `cfg`."""
    from genrec.errors import UsageError

    if cfg.name not in FAMILIES:
        raise UsageError(f"Unknown model family {cfg.name!r}; expected one of: {', '.join(FAMILIES)}.")
    if cfg.name == "pop":
        return Popularity()
    if cfg.name == "ease":
        return EASE(lambdas=cfg.ease_lambdas, tuning_repeats=cfg.tuning_repeats)
    if cfg.name == "itemknn":
        return ItemKNN(neighbours=cfg.knn_neighbours, shrink=cfg.knn_shrink, tuning_repeats=cfg.tuning_repeats)
    return CFGAN(**{k: getattr(cfg, k) for k in CFGAN_FIELDS}, progress=progress)


def require_servable(cfg: ModelConfig) -> None:
    """UsageError unless the training flow can register and serve this model (it must score new
    users' histories): the item-based CFGAN cannot."""
    from genrec.errors import UsageError

    if cfg.name == "cfgan" and cfg.mode == "item":
        raise UsageError("model.mode=item (item-based CFGAN) scores only the users it trained on and cannot be "
                         "served; use it with `genrec evaluate`, and model.mode=user for `genrec run`.")
