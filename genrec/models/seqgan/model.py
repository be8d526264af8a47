"""The sequence family's recommender (`seqgan`): a history in time order in, every item's score as
the next one out."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from genrec.dataset import Histories
from genrec.models.base import Capabilities, ModelState, Recommender, Scorer, finite_scores
from genrec.models.seqgan.config import SeqGANConfig
from genrec.models.item_table import ItemAttributes
from genrec.models.seqgan.networks import ITEM_TABLE, SequenceEncoder, folded, score_histories
from genrec.models.seqgan.trainer import AdversarialTrainer, SeqTrainer
from genrec.training import REFIT, SELECT, FitOptions, LoopResult, resolve_device, train_loop

if TYPE_CHECKING:
    from genrec.dataset import Dataset


class SeqGAN(Recommender):
    name = "seqgan"
    capabilities = Capabilities(uses_order=True, uses_attributes=True, iterative=True)

    def fit(self, data: "Dataset", options: FitOptions | None = None) -> "SeqGAN":
        cfg, train = self.config, self.train_config
        options = options or FitOptions()
        device = resolve_device(train.device)
        result = train_loop(lambda splits: SeqTrainer(cfg, data.histories(splits=splits), device, train.seed,
                                                      self._attributes(data, splits)),
                            data, train, options, name=self.name)
        self.chosen_params_ = {"epochs": result.best_epoch}
        self.twin_ = self.adversarial_ = None
        if cfg.adversarial:
            result = self._adversarial_stage(data, result, options, device)
        self.training_ = result
        self.encoder_ = self._encoder(data, result.kept, REFIT if result.refit else SELECT)
        self._selected = self._encoder(data, result.selected, SELECT) if result.refit else None
        if result.refit:
            self.chosen_params_["refit"] = True
        self.trained_on_ = str(device)
        self._remember(data)
        return self

    def _attributes(self, data: "Dataset", splits: tuple[str, ...]) -> ItemAttributes | None:
        return ItemAttributes.for_splits(data, splits, self.config.attributes)

    def _adversarial_stage(self, data: "Dataset", ce: LoopResult, options: FitOptions, device) -> LoopResult:
        """Train on from the cross-entropy stage `ce` against a discriminator; keep the result only
        where it ranks better on validation than `ce`."""
        cfg, train = self.config, self.train_config
        adversarial = train_loop(
            lambda splits: AdversarialTrainer(cfg, data.histories(splits=splits), device, train.seed,
                                              self._attributes(data, splits),
                                              start=ce.kept if splits == REFIT else ce.selected),
            data, dataclasses.replace(train, patience=cfg.adv_patience), _second_stage(options, ce),
            name=f"{self.name} adversarial")
        # For comparisons: the first stage is what `adversarial=false` keeps with the same seed (the
        # twin), and the second stage's best on validation is what it gives where it is kept.
        self.twin_ = self._encoder(data, ce.kept, REFIT if ce.refit else SELECT)
        self.adversarial_ = self._encoder(data, adversarial.kept, REFIT if adversarial.refit else SELECT)
        kept = ce.best_score is None or adversarial.best_score > ce.best_score
        self.chosen_params_["adversarial_epochs"] = adversarial.best_epoch if kept else 0
        return _both(ce, adversarial, kept)

    def _encoder(self, data: "Dataset", weights: dict, splits: tuple[str, ...]) -> SequenceEncoder:
        """A CPU encoder with `weights`, learnt from `data`'s `splits` (fitted models serve on the
        CPU, wherever they trained), its item attributes folded into its item table."""
        encoder = SequenceEncoder(data.n_items, self.config, attributes=self._attributes(data, splits))
        encoder.load_state_dict({k: v.detach().to("cpu") for k, v in weights.items()})
        return folded(encoder).eval()

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return finite_scores(score_histories(self.encoder_, histories), "The sequence model")

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """The selection run's encoder (trained on the training split) where a refit replaced it."""
        self._check_fitted()
        if self._selected is None:
            return self.score
        return lambda histories: finite_scores(score_histories(self._selected, histories), "The sequence model")

    def get_state(self) -> ModelState:
        self._check_fitted()
        arrays = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in self.encoder_.state_dict().items()}
        return ModelState(arrays=arrays, meta={"n_items": self.n_items_, "chosen": self.chosen_params_,
                                               "positions": self.config.positions})

    @classmethod
    def from_state(cls, config: SeqGANConfig, state: ModelState) -> "SeqGAN":
        # What its positions count is the version's own (versions without the word counted from the start).
        config = dataclasses.replace(config, positions=state.meta.get("positions", "from_start"))
        model = cls(config)
        model.n_items_, model.chosen_params_ = state.meta["n_items"], state.meta["chosen"]
        prefix = "encoder."
        weights = {_current_name(k[len(prefix):]): torch.from_numpy(np.array(v)) for k, v in state.arrays.items()
                   if k.startswith(prefix)}
        model.encoder_ = SequenceEncoder(model.n_items_, config)
        model.encoder_.load_state_dict(weights)
        model.encoder_.eval()
        model._selected = model.twin_ = model.adversarial_ = None
        return model


def _current_name(key: str) -> str:
    """A saved weight's name in today's encoder (the item embeddings were `items.weight` before the
    item table could hold attributes)."""
    return ITEM_TABLE if key == "items.weight" else key


def _second_stage(options: FitOptions, ce: LoopResult) -> FitOptions:
    """`options` for the adversarial stage: its own checkpoint file beside the first stage's, its
    epochs counted on from the first stage's, and its patience spent once it has gone that many
    epochs without a validation score above the first stage's best (below it, it is not kept)."""
    checkpoint = options.checkpoint
    on_epoch = options.on_epoch
    after = len(ce.history)
    return FitOptions(
        checkpoint=None if checkpoint is None else checkpoint.with_name(f"adversarial-{checkpoint.name}"),
        resume=options.resume, meta=options.meta, log=options.log, progress=options.progress, to_beat=ce.best_score,
        on_epoch=None if on_epoch is None else lambda epoch, record: on_epoch(after + epoch, _counted_on(record, after)))


def _counted_on(record: dict[str, float], after: int) -> dict[str, float]:
    return {**record, "epoch": after + record["epoch"]}


def _both(ce: LoopResult, adversarial: LoopResult, kept: bool) -> LoopResult:
    """One curve of both stages (the second's epochs counted on from the first's), and the weights
    and choice of the stage kept."""
    after = len(ce.history)
    chosen = adversarial if kept else ce
    resumed_at = after + adversarial.resumed_at if adversarial.resumed_at is not None else ce.resumed_at
    return LoopResult(history=ce.history + [_counted_on(r, after) for r in adversarial.history],
                      best_epoch=chosen.best_epoch + (after if kept else 0), best_score=chosen.best_score,
                      floor=ce.floor, selected=chosen.selected, kept=chosen.kept, refit=chosen.refit,
                      resumed_at=resumed_at)
