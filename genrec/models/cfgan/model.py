"""The CFGAN recommender: trained by the training loop, scored by its kept generator.

The generator that is kept is the one validation chose (NDCG@20 on the validation split, never the
test split), or with `train.refit` the one trained again on train + validation for that many epochs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from genrec.dataset import Histories
from genrec.errors import UsageError
from genrec.models.base import Capabilities, ModelState, Recommender, Scorer, finite_scores
from genrec.models.cfgan.config import CFGANConfig
from genrec.models.cfgan.networks import Generator, folded, generate
from genrec.models.cfgan.sampled import SampledCFGANTrainer
from genrec.models.cfgan.trainer import CFGANTrainer
from genrec.models.item_table import ItemAttributes
from genrec.training import REFIT, SELECT, TrainConfig, resolve_device, train_loop

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions

log = logging.getLogger(__name__)


class CFGAN(Recommender):
    """CFGAN, user- or item-based."""

    name = "cfgan"
    capabilities = Capabilities(uses_attributes=True, iterative=True)

    def __init__(self, config: CFGANConfig | None = None, train: TrainConfig | None = None):
        super().__init__(config or CFGANConfig(), train or TrainConfig())

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "CFGAN":
        cfg, train = self.config, self.train_config
        device = resolve_device(train.device)
        oriented = (lambda m: m) if cfg.mode == "user" else (lambda m: m.T.tocsr())
        result = train_loop(lambda splits: self._trainer(oriented(data.matrix(*splits)), device,
                                                         self._attributes(data, splits)),
                            data, train, options, name=self.name)
        self.training_ = result
        self.width_ = data.n_items if cfg.mode == "user" else data.n_users
        self.generator_ = self._generator(result.kept, self._attributes(data, REFIT if result.refit else SELECT))
        # for validation_scorer, not kept
        self._selected = self._generator(result.selected, self._attributes(data, SELECT)) if result.refit else None
        self.chosen_params_ = {"epochs": result.best_epoch, **({"refit": True} if result.refit else {})}
        self.trained_on_ = str(device)
        self._remember(data)
        if cfg.mode == "item":
            self.known_matrix_ = data.known
        return self

    def _trainer(self, rows, device, attributes: ItemAttributes | None):
        """The published trainer, or the one at the interactions' cost (`model.cfgan.output`)."""
        if self.config.sampled(rows):
            log.info("CFGAN trains on sampled outputs: %d interactions and %d drawn items per row, not %d x %d",
                     rows.nnz, self.config.negatives, *rows.shape)
            return SampledCFGANTrainer(self.config, rows, device, self.train_config.seed, attributes)
        return CFGANTrainer(self.config, rows, device, self.train_config.seed, attributes)

    def _attributes(self, data: "Dataset", splits: tuple[str, ...]) -> ItemAttributes | None:
        return ItemAttributes.for_splits(data, splits, self.config.attributes)

    def _generator(self, weights: dict, attributes: ItemAttributes | None = None) -> Generator:
        """A CPU generator with `weights` (fitted models serve on the CPU, wherever they trained),
        the item `attributes` it trained with folded into its output layer."""
        generator = Generator(self.width_, self.config.hidden_g, self.config.layers_g, attributes=attributes)
        generator.load_state_dict({k: v.detach().to("cpu") for k, v in weights.items()})
        return folded(generator).eval()

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        if self.config.mode == "item":
            raise UsageError("An item-based CFGAN scores only the users it trained on (its generator completes items' "
                             "vectors of users), not new histories: use model.cfgan.mode=user to serve or to score "
                             "histories.")
        return finite_scores(generate(self.generator_, histories.matrix()), "CFGAN")

    def score_users(self, users: np.ndarray) -> np.ndarray:
        if self.config.mode == "user":
            return super().score_users(users)
        self._check_fitted()
        # Item-based: each item's column of the known matrix in, that item's scores for every user out.
        return finite_scores(generate(self.generator_, self.known_matrix_.T.tocsr(), columns=np.asarray(users)).T,
                             "CFGAN")

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """The selection run's generator (trained on the training split) where a refit replaced it."""
        self._check_fitted()
        if self._selected is None:
            return self.score
        return lambda histories: finite_scores(generate(self._selected, histories.matrix()), "CFGAN")

    def get_state(self) -> ModelState:
        self._check_fitted()
        arrays = {f"generator.{k}": v.detach().cpu().numpy() for k, v in self.generator_.state_dict().items()}
        return ModelState(arrays=arrays, meta={"width": self.width_, "n_items": self.n_items_,
                                               "chosen": self.chosen_params_})

    @classmethod
    def from_state(cls, config: CFGANConfig, state: ModelState) -> "CFGAN":
        model = cls(config)
        model.width_, model.n_items_ = state.meta["width"], state.meta["n_items"]
        model.chosen_params_ = state.meta["chosen"]
        prefix = "generator."
        model.generator_ = model._generator({k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in
                                             state.arrays.items() if k.startswith(prefix)})
        model._selected = None
        return model
