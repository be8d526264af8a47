"""One typed configuration tree, with the named presets `tiny` and `default`.

Loaded once at the entry point (`load_config`), passed down explicitly and logged whole to MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrec.errors import UsageError


@dataclass(frozen=True)
class DataConfig:
    format: str = "auto"
    """Input format (see SPEC: movielens-100k, movielens-1m, movielens-latest, cfgan, online-retail,
    csv, parquet) or `auto` to detect it from the file."""
    user_col: str = "user_id"
    """User id column for `csv`/`parquet` input."""
    item_col: str = "item_id"
    """Item id column for `csv`/`parquet` input."""
    rating_col: str = "rating"
    """Optional rating column for `csv`/`parquet` input."""
    timestamp_col: str = "timestamp"
    """Optional timestamp column for `csv`/`parquet` input."""
    rating_threshold: float | None = None
    """Ratings below this are dropped before implicit feedback; None keeps every interaction."""


@dataclass(frozen=True)
class PrepareConfig:
    min_user_interactions: int = 1
    """Users with fewer interactions (after cleaning) are dropped."""
    min_item_interactions: int = 1
    """Items with fewer interactions (after cleaning) are dropped."""
    test_fraction: float = 0.2
    """Share of each user's interactions held out for the test split."""
    validation_fraction: float = 0.1
    """Share of each user's remaining interactions held out for validation (early stopping)."""
    min_interactions_to_split: int = 3
    """Users with fewer interactions keep all of them in the training split."""
    seed: int = 42
    """Seed of the per-user random split."""


@dataclass(frozen=True)
class ValidationConfig:
    min_users: int = 10
    """The prepared data must have at least this many users."""
    min_items: int = 10
    """The prepared data must have at least this many items."""
    min_interactions: int = 50
    """The prepared data must have at least this many interactions."""
    min_user_interactions: int = 1
    """Every user in the prepared data must have at least this many interactions."""
    min_item_interactions: int = 1
    """Every item in the prepared data must have at least this many interactions."""
    reject_bad_item_attributes: bool = False
    """Whether failing the item-attribute suite (genres, descriptions, prices) rejects the data;
    by default it only warns, since the models do not use the attributes."""


@dataclass(frozen=True)
class DriftConfig:
    """Drift of the prepared data against the champion's training data (see `genrec.drift`)."""

    max_size_change: float = 0.5
    """Largest |interactions now / interactions then - 1| that passes."""
    max_new_users_share: float = 0.6
    """Largest share of users the champion never saw that passes."""
    max_new_items_share: float = 0.3
    """Largest share of items the champion never saw that passes."""
    max_popularity_shift: float = 0.2
    """Largest Jensen-Shannon divergence (base 2) of the item popularity distributions that passes."""
    max_rating_shift: float = 0.2
    """Largest total variation distance of the rating distributions that passes."""
    reject: tuple[str, ...] = ()
    """Checks whose failure rejects the data (exit 3); the others only warn. Names: size_change,
    new_users_share, new_items_share, popularity_shift, rating_shift."""


@dataclass(frozen=True)
class ModelConfig:
    name: str = "cfgan"
    """Model family: `cfgan`, `ease`, `itemknn` or `pop`."""
    ease_lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 800.0, 1200.0, 2000.0)
    """EASE: L2 strengths tried; the one with the best validation NDCG@20 is kept."""
    knn_neighbours: tuple[int, ...] = (10, 25, 50, 100, 200, 400)
    """ItemKNN: neighbourhood sizes tried; the best on validation NDCG@20 is kept."""
    tuning_repeats: int = 5
    """EASE's lambda (also inside CFGAN's blend and start) and ItemKNN's k are chosen by the mean
    validation NDCG@20 over this many carve-outs of the training data: the validation split, then
    more drawn from train + validation with each user's validation count kept (a fixed seed). One
    carve-out's choice is noisy; each more costs one more round of fits. 1: the validation split only."""
    knn_shrink: float = 0.0
    """ItemKNN: shrink term added to the cosine's denominator."""
    device: str = "auto"
    """CFGAN: `auto` (CUDA when present, else CPU), `cpu` or `cuda`."""
    seed: int = 0
    """Seed of weight initialisation and negative sampling."""
    epochs: int = 300
    """Maximum number of epochs (one epoch: `d_steps` passes of D, then `g_steps` passes of G)."""
    patience: int = 30
    """Stop when validation NDCG@20 has not improved for this many epochs. CFGAN counts them only
    once its generator ranks better than popularity on validation: below that it has not started
    learning (on sparse data a GAN can take a few hundred epochs to start)."""
    hidden_g: int = 400
    """Width of the generator's hidden layers."""
    hidden_d: int = 125
    """Width of the discriminator's hidden layers."""
    layers_g: int = 1
    """Number of hidden layers of the generator."""
    layers_d: int = 1
    """Number of hidden layers of the discriminator."""
    scheme: str = "ZP"
    """CFGAN's negative-sampling scheme: ZR (zero reconstruction), PM (partial masking) or ZP (both)."""
    loss: str = "bce"
    """CFGAN's adversarial loss: `bce` (as published: D a classifier, cross-entropy) or `wgan-gp`
    (D a critic with a Wasserstein loss and a gradient penalty; Adam without momentum, betas 0, 0.9)."""
    gp_weight: float = 1.0
    """CFGAN with loss=wgan-gp: weight of the gradient penalty. 1 is what the measured runs used; the
    paper's 10 did not learn the test suite's block data at lr 1e-3 and did no better on Ciao."""
    noise_dim: int = 0
    """CFGAN: size of a standard normal noise input read by the generator beside the condition
    (0: none, as published); validation and serving use the noise's mean, 0."""
    init: str = "random"
    """CFGAN's generator start: `random` (as published) or `ease`: a linear item-item path beside
    the MLP, started from EASE fitted on the training split (lambda from `ease_lambdas`, chosen on
    validation), then refined adversarially; epoch 0 competes in early stopping. Needs mode=user and
    an items x items matrix in memory, like EASE."""
    lr_item_item: float | None = None
    """CFGAN with init=ease: Adam learning rate of the item-item path (None: lr_g; 0: frozen at
    EASE, only the MLP beside it learns)."""
    target: str = "history"
    """CFGAN: what the discriminator judges. `history` (as published): the generated vector against
    the user's whole history, given that history. `held_out`: given the items the generator saw
    (after `input_dropout`), the generated vector against the items dropped from its input."""
    blend: str = "none"
    """CFGAN: `none` (the generator's scores, as published) or `ease`: the scores served are a mix,
    blend_weight x the generator's + (1 - blend_weight) x EASE's (each standardised per user), the
    weight chosen on validation from `blend_weights` with the generator as validation chose it, and
    EASE's lambda from `ease_lambdas`. Needs mode=user and a validation split; skipped (with a
    warning) above `blend_max_items` items."""
    blend_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    """CFGAN with blend=ease: the generator's weights tried (0: EASE alone, 1: the generator alone)."""
    blend_max_items: int = 20000
    """CFGAN with blend=ease: above this many items EASE's dense items x items matrix (about
    12 bytes x items^2 while it is fitted) is not built, and the generator alone is kept."""
    refit: bool = False
    """CFGAN: once validation has chosen the number of epochs, train again on train + validation
    for that many (as the tuned baselines refit). The refit trains beside the selection run, on a
    second thread, and keeps its generator as it was at the chosen epoch."""
    mode: str = "user"
    """CFGAN's condition: `user` (a user's vector of items; scores any history, so it can be served)
    or `item` (an item's vector of users, as the authors' presets; scores only the users it trained
    on, so for `genrec evaluate` and benchmarks, not for `genrec run`)."""
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
    use it for validation and serving (0: the raw generator, as published)."""
    reg_g: float = 0.001
    """L2 penalty on the generator's weights."""
    reg_d: float = 0.0
    """L2 penalty on the discriminator's weights."""
    lr_g: float = 1e-4
    """Adam learning rate of the generator."""
    lr_d: float = 1e-4
    """Adam learning rate of the discriminator."""
    batch_g: int = 32
    """Users per generator step."""
    batch_d: int = 64
    """Users per discriminator step."""
    g_steps: int = 4
    """Passes over the users for G per epoch."""
    d_steps: int = 2
    """Passes over the users for D per epoch."""


@dataclass(frozen=True)
class EvalConfig:
    ks: tuple[int, ...] = (5, 10, 20)
    """Cut-offs at which every metric is reported."""
    primary_metric: str = "ndcg@20"
    """The metric used for early stopping and by the gate."""


@dataclass(frozen=True)
class GateConfig:
    min_improvement: float = 0.0
    """The margin: a challenger must beat the champion's primary metric by more than this (absolute);
    with the bootstrap, the lower end of the 95% interval of the difference must."""
    bootstrap_samples: int = 1000
    """Paired bootstrap samples over users for the champion comparison (0: compare means only)."""
    bootstrap_seed: int = 0
    """Seed of the bootstrap, so that a decision can be reproduced."""
    floors: tuple[str, ...] = ()
    """Value thresholds, `metric:minimum` (e.g. `precision@5:0.05`): every candidate, the first
    included, must reach each."""
    guardrails: tuple[str, ...] = ("coverage@20:0.05",)
    """`metric:max_drop`: against a champion, the candidate's value may not fall by more than
    max_drop below the champion's (catalogue coverage, by default); `metric:10%` makes the drop
    relative to the champion's value."""
    changes: tuple[str, ...] = ()
    """Change thresholds against a champion, `metric:direction:amount`: direction `higher` or `lower`
    says which way is better; amount is absolute (`0.01`) or relative to the champion's value
    (`2%`), and is the least change in the better direction that passes (negative: a drop allowed).
    E.g. `recall@20:higher:1%` (must improve by 1%), `mrr@20:higher:-0.02` (may fall by 0.02)."""
    min_lift_over_popularity: float = 0.0
    """A first model must beat the popularity baseline by more than this (absolute)."""
    require_approval: bool = False
    """When the gate passes, register the candidate and pause the flow until a person approves or
    rejects it (Prefect UI, or `genrec approve RUN` / `genrec reject RUN`)."""
    approval_timeout: int = 86400
    """Seconds to wait for that answer; no answer counts as a rejection."""
    approval_poll_interval: int = 10
    """Seconds between the paused flow's checks for an answer."""


@dataclass(frozen=True)
class RegistryConfig:
    model_name: str = "genrec"
    """Name of the registered model in MLflow."""
    experiment: str = "genrec"
    """MLflow experiment that holds the training runs."""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    progress: bool = True
    """Show progress bars (they are off anyway when stderr is not a terminal or CI is set)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys, as MLflow params: `model.epochs` -> 300."""
        out: dict[str, Any] = {}

        def walk(prefix: str, d: dict[str, Any]) -> None:
            for k, v in d.items():
                if isinstance(v, dict):
                    walk(f"{prefix}{k}.", v)
                else:
                    out[f"{prefix}{k}"] = v

        walk("", self.to_dict())
        return out


# The values CFGAN's choice-valued settings accept (checked here at load and by the model itself).
CFGAN_CHOICES: dict[str, tuple[str, ...]] = {
    "scheme": ("ZR", "PM", "ZP"),
    "loss": ("bce", "wgan-gp"),
    "mode": ("user", "item"),
    "init": ("random", "ease"),
    "target": ("history", "held_out"),
    "blend": ("none", "ease"),
}

# CFGAN user-based, with the ZR scheme alone (no partial masking: with it the generator stays at
# popularity on Online Retail), the authors' ML-100K ZR ratio and discriminator, a generator half as
# wide (200), input dropout on the generator's condition, an average of the generator's weights,
# larger batches, a 20x learning rate and one D pass per four G passes; the scores served are mixed
# with EASE's, by a weight chosen on validation. No refit. Up to 600 epochs (measured on the
# ML-100K and Ciao splits and on Online Retail: README, "The model" and "Measured"; docs/results.md).
_DEFAULT: dict[str, Any] = {
    "model.scheme": "ZR",
    "model.blend": "ease",
    "model.epochs": 600,
    "model.input_dropout": 0.5,
    "model.ema_decay": 0.998,
    "model.hidden_g": 200,
    "model.batch_g": 256,
    "model.batch_d": 256,
    "model.d_steps": 1,
    "model.lr_g": 2e-3,
    "model.lr_d": 2e-3,
}

PRESETS: dict[str, dict[str, Any]] = {
    "default": _DEFAULT,
    # The `default` generator (with the ZP scheme it was measured with) and a linear item-item path
    # started from EASE (fitted on the training split), refined adversarially; epoch 0 competes in
    # early stopping, so the adversarial epochs are kept only where validation says they help (see
    # docs/results.md). The generator alone (no blend: it holds EASE already), refitted on train +
    # validation.
    "cfgan-ease": {
        **_DEFAULT, "model.scheme": "ZP", "model.init": "ease", "model.blend": "none", "model.refit": True,
        "model.lr_g": 1e-4, "model.lr_d": 1e-4, "model.epochs": 100, "model.patience": 10,
    },
    # genrec's GAN alone, the best found on ML-100K (docs/results.md): the ZP scheme with a Wasserstein
    # loss and gradient penalty, a wider critic (250), input dropout 0.3, one G pass per two critic
    # passes at a learning rate of 1e-3, refitted on train + validation; no blend. Slower than `default`.
    "cfgan-wgan": {
        **_DEFAULT, "model.scheme": "ZP", "model.loss": "wgan-gp", "model.gp_weight": 1.0, "model.hidden_d": 250,
        "model.input_dropout": 0.3, "model.lr_g": 1e-3, "model.lr_d": 1e-3, "model.d_steps": 2, "model.g_steps": 1,
        "model.refit": True, "model.blend": "none",
    },
    # The GAN alone for a larger catalogue such as Online Retail's, where `cfgan-wgan` learns slowly
    # (docs/results.md): `default`'s ZR generator and cross-entropy loss, three times as wide (600:
    # on that log's 3,665 items the width of 200 peaks lower) with more input dropout (0.7),
    # refitted on train + validation; no blend. Weaker than `cfgan-wgan` on ML-100K and Ciao; made
    # item-based (`model.mode=item`, for evaluation only) it is the best GAN alone on Ciao.
    "cfgan-wide": {
        **_DEFAULT, "model.hidden_g": 600, "model.input_dropout": 0.7, "model.refit": True, "model.blend": "none",
    },
    # The CFGAN authors' own hyperparameters (Bigdasgit/CFGAN, parameters.py), item-based, as
    # published; `epochs` is the top of the range they drew from, and validation early stopping
    # replaces their choice of epoch count by the test set; no blend with EASE (not theirs, and for
    # user-based models only). For `genrec evaluate` and benchmarks.
    "cfgan-ml100k": {
        "model.mode": "item", "model.hidden_g": 400, "model.hidden_d": 125, "model.reg_g": 0.001,
        "model.reg_d": 0.0, "model.lr_g": 1e-4, "model.lr_d": 1e-4, "model.batch_g": 32, "model.batch_d": 64,
        "model.layers_g": 1, "model.layers_d": 1, "model.g_steps": 4, "model.d_steps": 2, "model.scheme": "ZP",
        "model.zr_ratio": 0.7, "model.pm_ratio": 0.7, "model.zr_coefficient": 0.03, "model.epochs": 1000,
        "model.patience": 100,
        "model.blend": "none",
    },
    "cfgan-ml1m": {
        "model.mode": "item", "model.hidden_g": 300, "model.hidden_d": 250, "model.reg_g": 0.001,
        "model.reg_d": 5e-5, "model.lr_g": 1e-4, "model.lr_d": 5e-5, "model.batch_g": 256, "model.batch_d": 512,
        "model.layers_g": 1, "model.layers_d": 1, "model.g_steps": 1, "model.d_steps": 1, "model.scheme": "ZP",
        "model.zr_ratio": 0.9, "model.pm_ratio": 0.9, "model.zr_coefficient": 0.03, "model.epochs": 1550,
        "model.patience": 150,
        "model.blend": "none",
    },
    "cfgan-ciao": {
        "model.mode": "item", "model.hidden_g": 250, "model.hidden_d": 50, "model.reg_g": 0.001,
        "model.reg_d": 0.001, "model.lr_g": 1e-4, "model.lr_d": 1e-4, "model.batch_g": 128, "model.batch_d": 128,
        "model.layers_g": 1, "model.layers_d": 4, "model.g_steps": 1, "model.d_steps": 1, "model.scheme": "ZR",
        "model.zr_ratio": 0.4, "model.pm_ratio": 0.2, "model.zr_coefficient": 0.1, "model.epochs": 550,
        # Validation falls for the first ~175 epochs on Ciao before the generator learns (best near
        # the cap; docs/results.md): a patience of 100 stopped it at epoch 101, at the start, before
        # patience waited for popularity to be beaten. Measured with the whole run.
        "model.patience": 550,
        "model.blend": "none",
    },
    # Trains in seconds on small data: for smoke tests, CI and the contract check.
    "tiny": {
        "model.epochs": 30,
        "model.patience": 10,
        "model.hidden_g": 256,
        "model.hidden_d": 64,
        "model.input_dropout": 0.5,
        "model.batch_g": 32,
        "model.batch_d": 32,
        "model.g_steps": 1,
        "model.d_steps": 1,
        "model.lr_g": 3e-3,
        "model.lr_d": 3e-3,
    },
}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Turn a `--set` string (or a TOML/JSON value) into the field's declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_coerce(v, inner, key) for v in items)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp in (int, float, str):
            return tp(value)
    except (TypeError, ValueError):
        raise UsageError(f"Config key {key!r} expects {tp.__name__}, got {value!r}.") from None
    return value


def _apply(obj: Any, key: str, value: Any, path: str = "") -> Any:
    """Return a copy of the dataclass `obj` with dotted `key` set to `value`."""
    head, _, rest = key.partition(".")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    full = f"{path}{head}"
    if head not in fields:
        known = ", ".join(sorted(fields))
        raise UsageError(f"Unknown config key {full!r} (known here: {known}).")
    hints = typing.get_type_hints(type(obj))
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UsageError(f"Config key {full!r} has no sub-keys.")
        return dataclasses.replace(obj, **{head: _apply(current, rest, value, f"{full}.")})
    if dataclasses.is_dataclass(current):
        raise UsageError(f"Config key {full!r} is a section; set one of its fields.")
    return dataclasses.replace(obj, **{head: _coerce(value, hints[head], full)})


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_config(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build the config from a preset name or a TOML/JSON file, then `KEY=VALUE` overrides."""
    cfg = Config()
    values: dict[str, Any]
    if source is None or source in PRESETS:
        values = dict(PRESETS[source or "default"])
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(
                f"--config {source!r} is neither a preset ({', '.join(PRESETS)}) nor a readable file."
            )
        text = path.read_text()
        try:
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"Config file {path} is not valid: {exc}.") from None
        preset = raw.pop("preset", "default")
        if preset not in PRESETS:
            raise UsageError(f"Config file {path} names an unknown preset {preset!r}.")
        values = dict(PRESETS[preset]) | _flatten(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}.")
        values[key.strip()] = value.strip()
    for key, value in values.items():
        cfg = _apply(cfg, key, value)
    try:
        named = [m for m, _ in metric_rules(cfg.gate.floors, "floors")]
        named += [r.metric for r in change_rules(cfg.gate) if r.source == "changes"]
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None
    for name, allowed in CFGAN_CHOICES.items():
        value = getattr(cfg.model, name)
        if value not in allowed:
            raise UsageError(f"model.{name} must be one of {', '.join(allowed)}, got {value!r}.")
    if cfg.model.tuning_repeats < 1:
        raise UsageError(f"model.tuning_repeats must be at least 1, got {cfg.model.tuning_repeats}.")
    if cfg.model.init == "ease" and cfg.model.mode != "user":
        raise UsageError("model.init=ease needs model.mode=user.")
    if cfg.model.name == "cfgan" and cfg.model.blend == "ease" and cfg.model.mode != "user":
        raise UsageError("model.mode=item cannot be blended with EASE (model.blend=ease; EASE scores a user's "
                         "items): add --set model.blend=none. An item-based CFGAN is for `genrec evaluate` only.")
    known = metric_names(cfg.eval)
    for metric in [cfg.eval.primary_metric, *named]:
        if metric not in known:
            raise UsageError(f"Config names the metric {metric!r}, which the evaluation does not compute "
                             f"(it computes {', '.join(known)}).")
    return cfg


def metric_names(eval_cfg: EvalConfig) -> list[str]:
    """Every metric the evaluation reports for these cut-offs."""
    names = [f"{m}@{k}" for k in eval_cfg.ks for m in ("precision", "recall", "ndcg", "mrr")]
    return names + [f"coverage@{max(eval_cfg.ks)}"]


def metric_rules(specs: tuple[str, ...], what: str) -> list[tuple[str, float]]:
    """`metric:number` strings (gate.floors) to pairs; ValueError for a malformed one."""
    out = []
    for spec in specs:
        metric, sep, number = spec.rpartition(":")
        try:
            out.append((metric, float(number)))
        except ValueError:
            sep = ""
        if not sep or not metric:
            raise ValueError(f"gate.{what} entries look like 'ndcg@20:0.05', got {spec!r}")
    return out


@dataclass(frozen=True)
class ChangeRule:
    """A change threshold against the champion: moving `metric` in the better `direction` by at
    least `amount` (a fraction of the champion's value when `relative`) passes."""

    metric: str
    direction: str
    amount: float
    relative: bool
    source: str
    """`changes` or `guardrails`: which config list the rule came from."""

    def change(self, candidate: float, champion: float) -> float:
        """The candidate's change over the champion in the better direction (relative if asked)."""
        delta = candidate - champion if self.direction == "higher" else champion - candidate
        if not self.relative:
            return delta
        if champion == 0:
            return 0.0 if delta == 0 else (float("inf") if delta > 0 else float("-inf"))
        return delta / abs(champion)

    def describe(self, amount: float | None = None) -> str:
        value = self.amount if amount is None else amount
        return f"{value * 100:+.2f}%" if self.relative else f"{value:+.4f}"


def _amount(text: str) -> tuple[float, bool]:
    relative = text.endswith("%")
    value = float(text[:-1] if relative else text)
    return (value / 100 if relative else value), relative


def change_rules(gate: GateConfig) -> list[ChangeRule]:
    """gate.changes (`metric:higher|lower:amount[%]`) and gate.guardrails (`metric:max_drop[%]`,
    i.e. `metric:higher:-max_drop`) as rules; ValueError for a malformed entry."""
    rules = []
    for spec in gate.changes:
        parts = spec.split(":")
        try:
            metric, direction, amount = parts
            value, relative = _amount(amount)
            if not metric or direction not in ("higher", "lower"):
                raise ValueError(spec)
        except ValueError:
            raise ValueError(f"gate.changes entries look like 'recall@20:higher:1%' or 'mrr@20:higher:-0.02' "
                             f"(direction higher or lower), got {spec!r}") from None
        rules.append(ChangeRule(metric, direction, value, relative, "changes"))
    for spec in gate.guardrails:
        metric, sep, amount = spec.rpartition(":")
        try:
            value, relative = _amount(amount)
            if not sep or not metric or value < 0:
                raise ValueError(spec)
        except ValueError:
            raise ValueError(f"gate.guardrails entries look like 'coverage@20:0.05' or 'coverage@20:10%' "
                             f"(a drop allowed, not negative), got {spec!r}") from None
        rules.append(ChangeRule(metric, "higher", -value, relative, "guardrails"))
    return rules
