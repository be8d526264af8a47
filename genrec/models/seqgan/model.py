"""The sequence family's recommender (`seqgan`): a history in time order in, every item's score as
the next one out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from genrec.dataset import Histories
from genrec.models.base import Capabilities, ModelState, Recommender, Scorer, finite_scores
from genrec.models.seqgan.config import SeqGANConfig
from genrec.models.seqgan.networks import SequenceEncoder, score_histories
from genrec.models.seqgan.trainer import SeqTrainer
from genrec.training import resolve_device, train_loop

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions


class SeqGAN(Recommender):
    name = "seqgan"
    capabilities = Capabilities(uses_order=True, iterative=True)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "SeqGAN":
        cfg, train = self.config, self.train_config
        device = resolve_device(train.device)
        result = train_loop(lambda splits: SeqTrainer(cfg, data.histories(splits=splits), device, train.seed), data,
                            train, options, name=self.name)
        self.training_ = result
        self.encoder_ = self._encoder(data.n_items, result.kept)
        self._selected = result.selected if result.refit else None
        self.chosen_params_ = {"epochs": result.best_epoch, **({"refit": True} if result.refit else {})}
        self.trained_on_ = str(device)
        self._remember(data)
        return self

    def _encoder(self, n_items: int, weights: dict) -> SequenceEncoder:
        """A CPU encoder with `weights` (fitted models serve on the CPU, wherever they trained)."""
        encoder = SequenceEncoder(n_items, self.config)
        encoder.load_state_dict({k: v.detach().to("cpu") for k, v in weights.items()})
        return encoder.eval()

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return finite_scores(score_histories(self.encoder_, histories), "The sequence model")

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """The selection run's encoder (trained on the training split) where a refit replaced it."""
        self._check_fitted()
        if self._selected is None:
            return self.score
        selected = self._encoder(self.n_items_, self._selected)
        return lambda histories: finite_scores(score_histories(selected, histories), "The sequence model")

    def get_state(self) -> ModelState:
        self._check_fitted()
        arrays = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in self.encoder_.state_dict().items()}
        return ModelState(arrays=arrays, meta={"n_items": self.n_items_, "chosen": self.chosen_params_})

    @classmethod
    def from_state(cls, config: SeqGANConfig, state: ModelState) -> "SeqGAN":
        model = cls(config)
        model.n_items_, model.chosen_params_ = state.meta["n_items"], state.meta["chosen"]
        prefix = "encoder."
        model.encoder_ = model._encoder(model.n_items_, {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in
                                                        state.arrays.items() if k.startswith(prefix)})
        model._selected = None
        return model
