"""One typed configuration tree, loaded once at the entry point and logged whole to MLflow.

Sections: `data`, `prepare`, `validation`, `drift`, `model` (the family, an optional blend partner,
and one section per registered family: `model.cfgan.*`, `model.ease.*`, ...), `train` (the training
loop of iterative families), `eval`, `gate`, `registry`. Presets are TOML files in
`genrec/presets/`; `--config` takes a preset's name or a TOML/JSON file, `--set KEY=VALUE` one field.
`--set model.X=...` where X is no field of `model` itself means `model.<model.name>.X`. Every value
is type- and range-checked at load: a bad one is a usage error (exit 2) before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from genrec.attributes_config import FeatureConfig
from genrec.errors import UsageError
from genrec.models.families import DEFAULT, FAMILIES
from genrec.ranges import at_least, between
from genrec.training import TrainConfig


@dataclass(frozen=True)
class DataConfig:
    format: Literal["auto", "movielens-100k", "movielens-1m", "movielens-latest", "cfgan", "online-retail", "csv",
                    "parquet"] = "auto"
    """Input format (SPEC's formats) or `auto` to detect it from the file."""
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
    items: str | None = None
    """An item attribute table (`--items`): MovieLens `u.item`, `movies.dat` or `movies.csv`, or a
    CSV/Parquet with an `item_id` column and any categorical, numeric and text columns. None: the
    source's own (`u.item` beside `u.data`; Online Retail's descriptions and prices)."""
    non_product_codes: tuple[str, ...] = ("POST", "DOT", "C2", "M", "m", "D", "S", "B", "BANK CHARGES", "AMAZONFEE",
                                          "CRUK")
    """Online Retail stock codes that are charges and adjustments, not products: postage (`POST`,
    `DOT`), carriage, manual entries, discounts, samples, bad debt, bank and Amazon fees, the CRUK
    commission. Cleaning drops them and counts them (`dropped_non_products`); empty keeps them. They
    are the log's codes outside its catalogue's pattern (five digits and an optional letter) whose
    descriptions name a charge; the gift vouchers and `DCGS` codes outside it have no customer."""


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
    split: Literal["random", "leave-last-out", "time"] = "random"
    """How test and validation are held out. `random`: a seeded share of each user's interactions
    (`test_fraction`, `validation_fraction`). `leave-last-out`: each user's last interaction by time is
    test and the one before it validation (ties in file order; users with fewer than
    `min_interactions_to_split` keep all in train). `time`: every interaction at or after `cutoff` is
    test, and each user's last one before it validation."""
    cutoff: str | None = None
    """The ISO date or time where `split = "time"` starts the test split."""
    repeats: Literal["last", "first", "all"] = "last"
    """Which occurrence of a repeated (user, item) pair is kept, and so when it counts as happening:
    the latest, the first (the sequential protocols' choice: a re-bought item stays where the user
    first chose it), or every one (re-buys stay in the history and can be held out; rows equal in
    user, item and timestamp count once)."""
    exclude_seen: bool = True
    """Items a user already has are left out of every ranking: in validation, evaluation, the gate,
    serving and batch scoring. False ranks them too, for shops whose customers re-buy (with
    `repeats = "all"`, where a held-out item can be one the user had)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "min_user_interactions", "min_item_interactions", "min_interactions_to_split")
        between(self, 0.0, 0.9, "test_fraction", "validation_fraction")
        if self.cutoff is not None:
            try:
                datetime.fromisoformat(self.cutoff)
            except ValueError:
                raise ValueError(f"cutoff must be an ISO date or time, got {self.cutoff!r}") from None


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
    by default it warns and the attributes are left out of the dataset."""

    def __post_init__(self) -> None:
        at_least(self, 1, "min_users", "min_items", "min_interactions", "min_user_interactions",
                  "min_item_interactions")


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

    def __post_init__(self) -> None:
        at_least(self, 0.0, "max_size_change")
        between(self, 0.0, 1.0, "max_new_users_share", "max_new_items_share", "max_popularity_shift",
                 "max_rating_shift")
        known = ("size_change", "new_users_share", "new_items_share", "popularity_shift", "rating_shift")
        unknown = [name for name in self.reject if name not in known]
        if unknown:
            raise ValueError(f"reject names {', '.join(unknown)}; the checks are {', '.join(known)}")


def _default_sections() -> dict[str, Any]:
    return {name: fam.config() for name, fam in FAMILIES.items()}


@dataclass(frozen=True)
class ModelConfig:
    name: str = DEFAULT
    """Model family: a name in `genrec.models.families.FAMILIES`."""
    blend: str = "none"
    """`none`, or a second family whose scores are mixed with the first's (each standardised per
    user) by a weight chosen on validation from `blend_weights` (a composite model)."""
    blend_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    """The first family's weights tried in the blend (0: the partner alone, 1: the first alone)."""
    blend_max_items: int = 5000
    """Above this many items `blend_large` takes the place of `blend` (EASE, the usual partner,
    holds a dense items x items matrix: about 12 bytes x items^2 while it is fitted)."""
    blend_large: str = "ease-lowrank"
    """The partner above `blend_max_items` items: a family whose cost grows with items x a constant,
    or `none` to keep the first family alone there."""
    sections: Mapping[str, Any] = field(default_factory=_default_sections)
    """One config section per family, by name."""

    def __post_init__(self) -> None:
        if self.name not in FAMILIES:
            raise ValueError(f"model.name must be one of {', '.join(FAMILIES)}, got {self.name!r}")
        if self.blend != "none" and self.blend not in FAMILIES:
            raise ValueError(f"model.blend must be none or one of {', '.join(FAMILIES)}, got {self.blend!r}")
        if not self.blend_weights or not all(0.0 <= w <= 1.0 for w in self.blend_weights):
            raise ValueError(f"model.blend_weights must lie between 0 and 1, got {self.blend_weights}")
        if self.blend_large != "none" and self.blend_large not in FAMILIES:
            raise ValueError(f"model.blend_large must be none or one of {', '.join(FAMILIES)}, got {self.blend_large!r}")
        if self.blend_max_items < 1:
            raise ValueError(f"model.blend_max_items must be at least 1, got {self.blend_max_items}")

    def section(self, name: str | None = None) -> Any:
        """The config section of family `name` (default: `self.name`)."""
        return self.sections[name or self.name]

    def to_dict(self) -> dict[str, Any]:
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sections"}
        return own | {name: dataclasses.asdict(section) for name, section in self.sections.items()}


OWN_MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "sections")


@dataclass(frozen=True)
class EvalConfig:
    ks: tuple[int, ...] = (5, 10, 20)
    """Cut-offs at which every metric is reported."""
    primary_metric: str = "ndcg@20"
    """The metric the gate decides on."""
    max_users: int = 20000
    """The gate and the run's report rank at most this many test users, a seeded sample (the same
    users for the candidate, the champion and popularity); every one where there are no more."""
    validation_users: int = 10000
    """Choices made on validation (early stopping, a lambda, a blend's weight) rank at most this
    many validation users, a seeded sample."""

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {self.ks}")
        at_least(self, 1, "max_users", "validation_users")


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

    def __post_init__(self) -> None:
        at_least(self, 0, "bootstrap_samples", "min_lift_over_popularity")
        at_least(self, 1, "approval_timeout", "approval_poll_interval")


@dataclass(frozen=True)
class ServingConfig:
    """What the served model accepts (`genrec serve`): larger requests get 413, bad values 400."""

    max_body_bytes: int = 1_000_000
    """Largest request body, in bytes."""
    max_records: int = 1000
    """Most records (users or histories) in one request."""
    max_history: int = 1000
    """Most items in one record's history."""
    max_k: int = 1000
    """Largest `k` a request may ask for."""
    batch_rows: int = 256
    """Records scored at a time: what bounds the memory a request takes, whatever its size."""
    reload_seconds: float = 30.0
    """How often the server checks where `champion` points, and loads the new version when it moved
    (0: never; restart to serve a new champion)."""
    log_requests: bool = False
    """Log every request and its answer as one JSON line (logger `genrec.server.requests`)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "max_body_bytes", "max_records", "max_history", "max_k", "batch_rows")
        at_least(self, 0, "reload_seconds")


@dataclass(frozen=True)
class RegistryConfig:
    model_name: str = "genrec"
    """Name of the registered model in MLflow."""
    experiment: str = "genrec"
    """MLflow experiment that holds the training runs."""
    artifact_location: str = ""
    """Where a new experiment keeps its artifacts (e.g. s3://bucket/genrec). Empty: where the tracking
    server says (its proxied artifact store) with a server, under `GENREC_HOME` without one."""


@dataclass(frozen=True)
class TuneConfig:
    grid: tuple[str, ...] = ()
    """Candidates the training flow fits and chooses between on validation NDCG@20 (never test):
    entries `KEY=V1|V2|...`, the grid their product (e.g. `model.cfgan.hidden_g=100|400` and
    `train.seed=0|1`: four fits); ties go to the first. Empty: one model, as configured."""
    task_runner: Literal["threads", "dask"] = "threads"
    """What fits the candidates: Prefect's thread pool, `workers` at a time (1: one after another),
    or Dask (prefect-dask): a local cluster of `workers` processes, or the scheduler at `dask_address`."""
    workers: int = 2
    """Candidates fitted at once (threads, or local Dask worker processes of one thread each)."""
    dask_address: str = ""
    """A running Dask scheduler (e.g. tcp://10.0.0.5:8786) whose workers have genrec installed."""

    def __post_init__(self) -> None:
        at_least(self, 1, "workers")
        self._axes()

    def _axes(self) -> list[list[str]]:
        """Each entry's `KEY=VALUE` choices; ValueError for an entry that is not `KEY=V1|V2|...` or
        varies another section."""
        axes = []
        for entry in self.grid:
            key, sep, values = (part.strip() for part in entry.partition("="))
            choices = [f"{key}={v.strip()}" for v in values.split("|") if v.strip()]
            if not sep or not key or not choices:
                raise ValueError(f"tune.grid entries are KEY=V1|V2|..., got {entry!r}")
            if not key.startswith(("model.", "train.", "features.")):
                raise ValueError(f"tune.grid varies model.*, train.* and features.* settings, got {entry!r}")
            axes.append(choices)
        return axes

    def candidates(self) -> list[list[str]]:
        """Each candidate's `KEY=VALUE` overrides, in grid order (the last entry varying fastest)."""
        import itertools

        axes = self._axes()
        return [list(c) for c in itertools.product(*axes)] if axes else []


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    progress: bool = True
    """Show a progress bar while training (only when stderr is a terminal)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, ModelConfig) else (
                dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
        return out

    def flat(self) -> dict[str, Any]:
        """Dotted keys, as MLflow params: `train.epochs` -> 300, `model.cfgan.hidden_g` -> 400."""
        return _flatten(self.to_dict())


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("genrec").joinpath("presets").iterdir()
                  if p.name.endswith(".toml"))


def _read_preset(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("genrec").joinpath("presets", f"{name}.toml").read_text())


def preset_values(name: str) -> dict[str, Any]:
    """A preset's values as dotted keys, the presets it names (`preset = "..."`) applied first."""
    raw = _read_preset(name)
    parent = raw.pop("preset", None)
    return (preset_values(parent) if parent else {}) | _flatten(raw)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Turn a `--set` string (or a TOML/JSON value) into the field's declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, args[0], key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise UsageError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}.")
        return value
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, inner, key) for v in items)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if tp in (float, str):
            return tp(value)
    except (TypeError, ValueError):
        raise UsageError(f"Config key {key!r} expects {tp.__name__}, got {value!r}.") from None
    return value


def _replace(obj: Any, full: str, **changes: Any) -> Any:
    try:
        return dataclasses.replace(obj, **changes)
    except ValueError as exc:
        raise UsageError(f"Config key {full!r}: {exc}.") from None


def _apply(obj: Any, key: str, value: Any, path: str = "") -> Any:
    """Return a copy of the dataclass `obj` with dotted `key` set to `value`."""
    head, _, rest = key.partition(".")
    full = f"{path}{head}"
    if isinstance(obj, ModelConfig) and head in obj.sections:
        if not rest:
            raise UsageError(f"Config key {full!r} is a section; set one of its fields.")
        sections = dict(obj.sections)
        sections[head] = _apply(obj.sections[head], rest, value, f"{full}.")
        return _replace(obj, full, sections=sections)
    fields = {f.name: f for f in dataclasses.fields(obj) if f.name != "sections"}
    if head not in fields:
        known = sorted(fields) + (sorted(obj.sections) if isinstance(obj, ModelConfig) else [])
        hint = f" It is `train.{head}` now." if path == "model." and head in _train_fields() else ""
        raise UsageError(f"Unknown config key {full!r} (known here: {', '.join(known)}).{hint}")
    hints = typing.get_type_hints(type(obj))
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UsageError(f"Config key {full!r} has no sub-keys.")
        return _replace(obj, full, **{head: _apply(current, rest, value, f"{full}.")})
    if dataclasses.is_dataclass(current):
        raise UsageError(f"Config key {full!r} is a section; set one of its fields.")
    return _replace(obj, full, **{head: _coerce(value, hints[head], full)})


def _train_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _expand(key: str, family: str) -> str:
    """`model.X` -> `model.<family>.X` for an X that is no field of `model` itself (shorthand for
    the chosen family's section)."""
    head, _, rest = key.partition(".")
    if head != "model" or not rest:
        return key
    first = rest.partition(".")[0]
    if first in OWN_MODEL_FIELDS or first in FAMILIES:
        return key
    section = FAMILIES[family].config
    if first not in {f.name for f in dataclasses.fields(section)}:
        others = [name for name, fam in FAMILIES.items() if first in {f.name for f in dataclasses.fields(fam.config)}]
        where = f" (it is an option of {', '.join(others)})" if others else ""
        hint = f" It is `train.{first}` now." if first in _train_fields() else ""
        raise UsageError(f"Unknown config key {key!r}: model family {family!r} has no option {first!r}{where}.{hint}")
    return f"model.{family}.{rest}"


def load_config(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build the config from a preset name or a TOML/JSON file, then `KEY=VALUE` overrides."""
    presets = preset_names()
    given: dict[str, Any] = {}
    if source is None or source in presets:
        values = preset_values(source or "default")
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"--config {source!r} is neither a preset ({', '.join(presets)}) nor a readable file.")
        text = path.read_text()
        try:
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"Config file {path} is not valid: {exc}.") from None
        preset = raw.pop("preset", "default")
        if preset not in presets:
            raise UsageError(f"Config file {path} names an unknown preset {preset!r}.")
        values = preset_values(preset)
        given = _flatten(raw)
    preset_model = values.get("model.name")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}.")
        given[key.strip()] = value.strip()
    values |= given
    if given.get("model.name", preset_model) != preset_model and "model.blend" not in given:
        values["model.blend"] = "none"  # a preset's blend belongs to the preset's model
    cfg = Config()
    name = values.pop("model.name", cfg.model.name)
    cfg = _apply(cfg, "model.name", name)
    if name in FAMILIES:
        for key, value in FAMILIES[name].train.items():
            values.setdefault(f"train.{key}", value)
    for key, value in values.items():
        cfg = _apply(cfg, _expand(key, cfg.model.name), value)
    _check(cfg)
    return cfg


def _check(cfg: Config) -> None:
    """Checks across fields, at load."""
    if cfg.prepare.split == "time" and cfg.prepare.cutoff is None:
        raise UsageError('prepare.split = "time" needs a cutoff (an ISO date, e.g. --set prepare.cutoff=2011-10-01).')
    try:
        named = [m for m, _ in metric_rules(cfg.gate.floors, "floors")]
        named += [r.metric for r in change_rules(cfg.gate) if r.source == "changes"]
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None
    known = metric_names(cfg.eval)
    for metric in [cfg.eval.primary_metric, *named]:
        if metric not in known:
            raise UsageError(f"Config names the metric {metric!r}, which the evaluation does not compute "
                             f"(it computes {', '.join(known)}).")
    if cfg.model.blend == cfg.model.name:
        raise UsageError(f"model.blend names the model's own family {cfg.model.name!r}: blend it with another one "
                         "or set model.blend=none.")


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
