"""The pipeline's stages as plain functions, shared by the Prefect flows and the CLI commands, so
that the two cannot disagree about what is bad data, how a model is trained or what the gate says.

validate (raw suite, item attributes, cleaning, prepared suite, drift) -> prepare -> train ->
evaluate -> gate -> register -> promote. A stage that rejects the data raises `DataError` with one
sentence naming the file, the column, how many rows and an example; nothing after it runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec import data as gdata
from genrec import drift, preprocessing, registry
from genrec.config import Config
from genrec.dataset import TEST, Dataset
from genrec.drift import DataProfile, DriftCheck
from genrec.errors import DataError, UsageError
from genrec.evaluation import EvalResult, evaluate_many, evaluate_scores, sample_rows
from genrec.fair import TrainingReference, fair_test
from genrec.gating import Decision, decide
from genrec.models.base import Recommender
from genrec.models.families import capabilities, make_model
from genrec.paths import checkpoints_dir, datasets_dir
from genrec.training import CHECKPOINT_FORMAT, FitOptions
from genrec.validation import DataValidator, ValidationReport, raw_suite_name, validate_prepared

log = logging.getLogger(__name__)


# --- validation ----------------------------------------------------------------------------------


def rejection(report: ValidationReport, path: Path) -> DataError:
    return DataError(f"{path}: data rejected by validation: {report.summary()}.", data_docs=str(report.data_docs),
                     outcomes=[o.__dict__ for o in report.outcomes], report=report)


def check_raw(path: Path, cfg: Config, validator: DataValidator) -> tuple[gdata.RawData, ValidationReport]:
    """Read the file and run its format's raw suite; DataError if it fails."""
    raw = gdata.read_raw(path, cfg.data.format, cfg.data)
    report = validator.validate(raw.frame, raw_suite_name(raw.format))
    if not report.success:
        raise rejection(report, path)
    return raw, report


def check_item_attributes(raw: gdata.RawData, cfg: Config, validator: DataValidator
                          ) -> tuple[pd.DataFrame | None, ValidationReport | None]:
    """The source's item attributes and their suite's report (None, None where it has none). A
    failing suite rejects the data if `validation.reject_bad_item_attributes`, else it warns and the
    attributes are not used."""
    found = gdata.item_attributes(raw, cfg.data)
    if found is None:
        return None, None
    frame, suite = found
    report = validator.validate(frame, suite)
    if report.success:
        return frame, report
    if cfg.validation.reject_bad_item_attributes:
        raise rejection(report, raw.path)
    log.warning("item attributes not used: %s", report.summary())
    return None, report


def clean(raw: gdata.RawData, cfg: Config) -> tuple[pd.DataFrame, dict[str, int]]:
    """Source-specific cleaning, then implicit feedback; the counts of what each rule dropped."""
    interactions, cleaning = gdata.to_interactions(raw, cfg.data)
    implicit = preprocessing.to_implicit(interactions, cfg.data, cfg.prepare)
    return implicit, cleaning.as_dict() | {"implicit_pairs": len(implicit)}


def check_prepared(implicit: pd.DataFrame, cfg: Config, validator: DataValidator, path: Path) -> ValidationReport:
    report = validate_prepared(validator, implicit, cfg.validation)
    if not report.success:
        raise rejection(report, path)
    return report


@dataclass
class DriftResult:
    profile: DataProfile
    checks: list[DriftCheck]
    report: ValidationReport | None
    champion: str | None


def check_drift(implicit: pd.DataFrame, cfg: Config, validator: DataValidator, path: Path) -> DriftResult:
    """Profile the prepared data and compare it with the champion's training data, if there is a
    champion with a logged profile; DataError if a check configured to reject fails."""
    profile = DataProfile.of(implicit)
    name = cfg.registry.model_name
    champion = registry.champion_version(name)
    reference = None
    if champion is not None:
        with registry.reference_dir(name, champion) as folder:
            reference = DataProfile.load(folder) if folder is not None and (folder / "profile.json").is_file() else None
    if reference is None:
        return DriftResult(profile, [], None, champion)
    checks, report = drift.check(reference, profile, cfg.drift, validator)
    reason = drift.rejection(checks)
    if reason:
        raise DataError(f"{path}: data rejected for drift against champion version {champion}'s training data: "
                        f"{reason}.", data_docs=str(report.data_docs), outcomes=[o.__dict__ for o in report.outcomes],
                        report=report)
    return DriftResult(profile, checks, report, champion)


@dataclass
class Checked:
    """Everything validation produced for data that passed."""

    path: Path
    format: str
    implicit: pd.DataFrame
    items: pd.DataFrame | None
    cleaning: dict[str, int]
    drift: DriftResult
    reports: list[ValidationReport] = field(default_factory=list)

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        return [o.__dict__ for r in self.reports for o in r.outcomes]


def validate(path: Path, cfg: Config, validator: DataValidator, reports: list[ValidationReport] | None = None,
             stage: Callable[[str, Callable[[], Any]], Any] | None = None) -> Checked:
    """Every check in order, stopping at the first that rejects. Each report is appended to
    `reports` as soon as it exists, the rejecting one included (so a caller can show what ran);
    `stage(name, call)` runs each step (the flow passes one that makes each a Prefect task)."""
    reports = [] if reports is None else reports
    run = stage or (lambda _name, call: call())

    def step(name: str, call: Callable[[], Any], report_of: Callable[[Any], Any]) -> Any:
        try:
            out = run(name, call)
        except DataError as exc:
            if exc.report is not None:
                reports.append(exc.report)
            raise
        report = report_of(out)
        if report is not None:
            reports.append(report)
        return out

    raw, _ = step("validate-raw", lambda: check_raw(path, cfg, validator), lambda out: out[1])
    items, _ = step("validate-item-attributes", lambda: check_item_attributes(raw, cfg, validator), lambda out: out[1])
    implicit, cleaning = step("clean", lambda: clean(raw, cfg), lambda out: None)
    step("validate-prepared", lambda: check_prepared(implicit, cfg, validator, path), lambda out: out)
    drifted = step("check-drift", lambda: check_drift(implicit, cfg, validator, path), lambda out: out.report)
    return Checked(path, raw.format, implicit, items, cleaning, drifted, reports)


# --- preparing, training, evaluating -------------------------------------------------------------


def prepare(checked: Checked, cfg: Config) -> Dataset:
    # A table given on its own (`--items`) is the shop's catalogue: its items without interactions
    # are items too; a source's own table (Online Retail's, built from the log) only describes.
    data = preprocessing.prepare(checked.implicit, cfg.prepare, items=checked.items,
                                 catalogue=cfg.data.items is not None)
    data.feature_config = cfg.features
    data.validation_users = cfg.eval.validation_users
    folder = datasets_dir(data.fingerprint)
    if not (folder / "dataset.json").is_file():
        data.save(folder)
    return data


def load_split(train: Path, test: Path, fmt: str, cfg: Config) -> Dataset:
    """A dataset from given train and test files (`genrec evaluate`): validation carved from train.
    For a model that reads order, with timestamps in the training file, the carve-out is each user's
    last training item by time (the test file holding the items after), unless `prepare.split`
    says otherwise."""
    train_rows = gdata.load_interactions(train, fmt, cfg.data)
    prepare = cfg.prepare
    if (prepare.split == "random" and "timestamp" in train_rows
            and _model_capabilities(cfg).uses_order and train_rows["timestamp"].notna().all()):
        prepare = dataclasses.replace(prepare, split="leave-last-out")
    data = preprocessing.from_split(train_rows, gdata.load_interactions(test, fmt, cfg.data), prepare)
    data.validation_users = cfg.eval.validation_users
    return data


def _model_capabilities(cfg: Config):
    first = capabilities(cfg.model.name, cfg.model.section())
    if cfg.model.blend == "none":
        return first
    second = capabilities(cfg.model.blend, cfg.model.section(cfg.model.blend))
    return dataclasses.replace(first, uses_order=first.uses_order or second.uses_order)


def attributes_used(data: Dataset, cfg: Config) -> dict[str, Any] | None:
    """What the configured model reads of the item attributes (which columns, featurised how, and
    how many items had none), or None where it reads none: a family that can use attributes does
    unless its section switches them off (`model.attributes=false`)."""
    names = [cfg.model.name] + ([cfg.model.blend] if cfg.model.blend != "none" else [])
    uses = any(capabilities(n, cfg.model.section(n)).uses_attributes and getattr(cfg.model.section(n), "attributes", True)
               for n in names)
    return data.features.report() if uses else None


def check_trainable(cfg: Config, served: bool) -> None:
    """UsageError unless the configured model can be trained here: served (by the training flow,
    which registers what it trains) needs a family that can be served; a blend needs both its
    models to score users' histories."""
    first = capabilities(cfg.model.name, cfg.model.section())
    if served and not first.servable:
        raise UsageError(f"model family {cfg.model.name!r} cannot be served with {first.limited_by or 'these settings'}; "
                         "use it with `genrec evaluate`.")
    if cfg.model.blend != "none":
        second = capabilities(cfg.model.blend, cfg.model.section(cfg.model.blend))
        for name, caps in ((cfg.model.name, first), (cfg.model.blend, second)):
            if not caps.scores_histories:
                raise UsageError(f"model.blend needs two models that score users' histories, and {name!r} does not "
                                 f"with {caps.limited_by or 'these settings'}: add --set model.blend=none.")


def training_digest(cfg: Config, data: Dataset) -> str:
    """What a checkpoint can be resumed under: the same data, the same settings of everything that
    shapes training, and the same checkpoint layout (one an older genrec wrote is not picked up)."""
    shaping = {k: cfg.to_dict()[k] for k in ("data", "prepare", "model", "train")}
    text = json.dumps({"data": data.fingerprint, "config": shaping, "format": CHECKPOINT_FORMAT}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    """One training run's checkpoint folder under GENREC_HOME/checkpoints/<run>/."""

    folder: Path

    @property
    def file(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def info_file(self) -> Path:
        return self.folder / "run.json"

    def info(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def write_info(self, **values: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info() | values, indent=2))
        os.replace(tmp, self.info_file)


def _checkpoints() -> list[Checkpoint]:
    root = checkpoints_dir()
    return [Checkpoint(p) for p in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)] if root.is_dir() else []


def run_checkpoint(run: str) -> Checkpoint:
    """Run `run`'s checkpoint (`run`: a checkpoint folder's name or an MLflow run id); UsageError if
    there is none."""
    found = next((c for c in _checkpoints() if c.folder.name == run or c.info().get("mlflow_run_id") == run), None)
    pruned = found.info().get("pruned") if found is not None and not found.file.is_file() else None
    if pruned:
        raise UsageError(f"--resume {run}: its checkpoint {found.file} was deleted at {pruned.get('at')} to keep only "
                         f"the newest {pruned.get('keep')} (train.keep_checkpoints); run it again without --resume.")
    if found is None or not found.file.is_file():
        raise UsageError(f"--resume {run}: no checkpoint of that run under {checkpoints_dir()}.")
    return found


def find_checkpoint(run: str | None, digest: str) -> Checkpoint | None:
    """The checkpoint to resume: run `run`'s (UsageError if it trained on other data or settings),
    or else the newest one left by a dead process with the same digest, or None."""
    if run is not None:
        found = run_checkpoint(run)
        if found.info().get("digest") != digest:
            raise UsageError(f"--resume {run}: that run trained on other data or with other settings (or under a "
                             "genrec whose checkpoints differ); give the same --data, --config and --set as it had.")
        return found
    for c in _checkpoints():
        info = c.info()
        if info.get("status") == "training" and info.get("digest") == digest and c.file.is_file() \
                and not registry.process_alive(int(info.get("pid", 0) or 0)):
            return c
    return None


@dataclass
class Pruned:
    """What one `prune_checkpoints` deleted."""

    folders: list[Checkpoint]
    """The folders whose checkpoint files were deleted (their run.json stays, marked `pruned`)."""
    freed: int
    """Bytes freed."""

    def sentence(self, keep: int) -> str:
        return (f"pruned {len(self.folders)} checkpoint{'' if len(self.folders) == 1 else 's'} under "
                f"{checkpoints_dir()} ({_size(self.freed)} freed; train.keep_checkpoints={keep})")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def prune_checkpoints(keep: int, current: Checkpoint, logger: logging.Logger | logging.LoggerAdapter | None = None
                      ) -> Pruned:
    """Delete the checkpoint files of all but the newest `keep` finished runs (train.keep_checkpoints)
    once run `current` has finished. The flow calls it after a run registered its model: a run that
    fails after training keeps its checkpoint (`--resume` of it skips training) until a later run
    prunes it. Under GENREC_HOME/checkpoints:

    - in progress (status `training`, its process alive): never touched, and not counted;
    - finished (status `trained` or `failed`, or a run.json missing or unreadable): the newest `keep`
      keep their checkpoint, `current` counted first (keep=0 deletes `current`'s too); "newest" is by
      when the checkpoint file was last written, then by folder name (a resumed run's folder carries
      the stamp of the run it resumed);
    - crashed (status `training`, its process dead: what the next run on the same data and settings
      resumes by itself): kept while fewer than `keep` finished checkpoints are newer than it, so a
      crash survives the runs just after it but one never resumed goes once `keep` newer runs have
      finished; it does not push a finished one out.

    A pruned folder loses checkpoint.pt and keeps run.json, marked `pruned`, so that `genrec run
    --resume` of it says why there is nothing to resume; a half-written checkpoint.pt.tmp of a
    folder not in progress goes too. Logs one line: how many were pruned and the space freed."""
    out = logger or log

    def written(c: Checkpoint) -> float:
        try:
            return c.file.stat().st_mtime
        except OSError:
            return 0.0

    finished: list[Checkpoint] = []
    crashed: list[Checkpoint] = []
    leftovers: list[Path] = []
    for c in _checkpoints():
        info = c.info()
        if info.get("status") == "training" and registry.process_alive(int(info.get("pid", 0) or 0)) \
                and c.folder != current.folder:
            continue
        half_written = c.file.with_name(c.file.name + ".tmp")
        if half_written.is_file():
            leftovers.append(half_written)
        if c.file.is_file():
            (crashed if info.get("status") == "training" and c.folder != current.folder else finished).append(c)
    order = sorted(finished, key=lambda c: (c.folder == current.folder, written(c), c.folder.name), reverse=True)
    doomed = order[keep:]
    doomed += [c for c in crashed if sum(written(f) > written(c) for f in finished) >= keep]

    freed = 0
    gone: list[Checkpoint] = []
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for path in [c.file for c in doomed] + leftovers:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another run pruned it first
            continue
        except OSError as exc:
            out.warning("could not delete checkpoint %s: %s", path, exc)
            continue
        freed += size
    for c in doomed:
        if not c.file.exists():
            try:
                c.write_info(pruned={"at": now, "keep": keep})
            except OSError as exc:
                out.warning("could not mark %s pruned: %s", c.info_file, exc)
            gone.append(c)
    result = Pruned(sorted(gone, key=lambda c: c.folder.name), freed)
    out.info(result.sentence(keep))
    return result


def train(data: Dataset, cfg: Config, options: FitOptions | None = None) -> Recommender:
    """A fresh model of the configured family, fitted on `data`."""
    return make_model(cfg).fit(data, options)


def validation_ndcg(model: Recommender, data: Dataset) -> float | None:
    """The fitted model's validation NDCG@20 as it stood before any refit on validation (what the
    tuning grid chooses by); None without validation interactions."""
    from genrec.training import validation_score

    if data.validation.nnz == 0:
        return None
    scorer = model.validation_scorer(data)
    histories = data.histories(splits=("train",))
    return validation_score(lambda users: scorer(histories.take(users)), data)


def grid_configs(config: str, overrides: list[str], cfg: Config) -> list[tuple[str, Config]]:
    """The configs of `cfg.tune.grid` (each `config` with `overrides`, then the candidate's own),
    labelled by those own overrides; each checked as a run's config is. None in the grid: []."""
    from genrec.config import load_config

    configs = [(", ".join(c), load_config(config, [*overrides, *c])) for c in cfg.tune.candidates()]
    for _, candidate in configs:
        check_trainable(candidate, served=True)
    return configs


def grid_choice(scores: list[float | None]) -> int:
    """The candidate with the best validation score; the first of equals (and the first where
    there is no validation split to choose on)."""
    known = [(-1.0 if s is None else s) for s in scores]
    return max(range(len(known)), key=lambda i: (known[i], -i))


def evaluate(model: Recommender, data: Dataset, cfg: Config) -> EvalResult:
    """Full-ranking metrics on the test split (at most `eval.max_users` of its users, a seeded
    sample), each test user conditioned on train + validation."""
    return evaluate_scores(model.score_users, *_test_rows(data, cfg), cfg.eval.ks)


def _test_rows(data: Dataset, cfg: Config) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """What `evaluate` conditions on (train + validation) and the test rows it ranks (sampled)."""
    return data.seen("train", "validation"), sample_rows(data.test, cfg.eval.max_users, cfg.gate.bootstrap_seed)


def evaluate_with_components(model: Recommender, data: Dataset,
                             cfg: Config) -> tuple[EvalResult, dict[str, dict[str, float]]]:
    """`evaluate`, and each fitted component of a composite model scored alone on the same users
    (what the blend's parts are worth on their own; each scored once for both); no components for a
    single model."""
    parts = getattr(model, "fitted_parts", [])
    if len(parts) < 2:
        return evaluate(model, data, cfg), {}

    def scores(users: np.ndarray) -> dict[str, np.ndarray]:
        mixed, alone = model.score_users_with_parts(users)
        return {"": mixed, **alone}

    names = [part.name for part in parts]
    results = evaluate_many(scores, ("", *names), *_test_rows(data, cfg), cfg.eval.ks)
    return results[""], {name: results[name].metrics for name in names}


def sample_test_users(data: Dataset, info: dict[str, Any], cfg: Config) -> tuple[Dataset, dict[str, Any]]:
    """`data` with the test interactions of at most `eval.max_users` test users (a seeded sample),
    and `info` (the gate test's description) saying so where it sampled."""
    sampled = sample_rows(data.test, cfg.eval.max_users, cfg.gate.bootstrap_seed)
    if sampled.nnz == data.test.nnz:
        return data, info
    test = data.events.split == TEST
    keep = np.diff(sampled.indptr)[data.events.user[test]] > 0
    users = int((np.diff(sampled.indptr) > 0).sum())
    log.info("the gate ranks a seeded sample of %d of %d test users (eval.max_users)", users, info["users"])
    return data.keep_test(keep), info | {"sampled_users": users, "of_users": info["users"], "users": users,
                                         "interactions": int(keep.sum())}


def evaluate_cold_start(model: Recommender, data: Dataset, cfg: Config) -> dict[str, EvalResult]:
    """The test split scored apart on warm items (some training or validation interaction) and
    cold ones (none: only their attributes are known), each ranked among its own kind, for the
    test users with a history to condition on."""
    cold = np.zeros(data.n_items, dtype=bool)
    cold[data.cold_items] = True
    with_history = (np.diff(data.known.indptr) > 0).astype(np.float32)
    truth = (sp.diags(with_history) @ data.test).tocsr()
    seen = data.seen("train", "validation")
    return {group: evaluate_scores(model.score_users, seen, truth, cfg.eval.ks, candidates=flags)
            for group, flags in (("warm", ~cold), ("cold", cold))}


def popularity_baseline(data: Dataset, gate_data: Dataset, cfg: Config) -> EvalResult:
    """Ranking by popularity in the training split, on the gate's test split."""
    counts = np.asarray(data.train.sum(axis=0)).ravel().astype(np.float32)
    return evaluate_scores(lambda users: np.broadcast_to(counts, (len(users), len(counts))),
                           gate_data.seen("train", "validation"),
                           gate_data.test, cfg.eval.ks)


def fair_gate_data(data: Dataset, cfg: Config, champion: str | None) -> tuple[Dataset, dict[str, Any]]:
    """The test split both models are compared on: all of it for a first model; for a champion,
    only what it cannot have trained on."""

    def whole(why: str) -> tuple[Dataset, dict[str, Any]]:
        return data, {"rule": f"the whole test split ({why})", "interactions": int(data.test.nnz), "removed": 0,
                      "users": int((np.diff(data.test.indptr) > 0).sum())}

    if champion is None:
        return sample_test_users(*whole("no champion yet"), cfg)
    with registry.reference_dir(cfg.registry.model_name, champion) as folder:
        reference = TrainingReference.load(folder) if folder is not None else None
    if reference is None:
        log.warning("champion %s has no training reference; comparing on the whole test split", champion)
        return sample_test_users(*whole("the champion logged no training data"), cfg)
    return sample_test_users(*fair_test(data, reference), cfg)


def score_served(model_uri: str, data: Dataset, cfg: Config) -> EvalResult:
    """Load a model back as a server would, answer its input example, then score the test users."""
    from genrec.serving import check_served, evaluate_served

    served = registry.load_model(model_uri)
    check_served(served)
    return evaluate_served(served, data, cfg.eval.ks)


def gate(candidate: EvalResult, champion: EvalResult | None, baseline: EvalResult, cfg: Config,
         champion_error: str | None = None) -> Decision:
    """The gate's decision. With `champion_error` (the champion exists but could not be loaded) the
    candidate is judged against popularity alone and is not promoted over it: that takes a person."""
    metric = cfg.eval.primary_metric
    paired = None
    if champion is not None and np.array_equal(candidate.users, champion.users):  # the same gate test users
        paired = (candidate.per_user[metric], champion.per_user[metric])
    decision = decide(candidate.metrics, champion.metrics if champion is not None else None, baseline.metrics, metric,
                      cfg.gate, paired=paired)
    if champion_error is None:
        return decision
    return dataclasses.replace(decision, promote=False, reasons=(
        *decision.reasons[:1], f"the champion could not be loaded, so the candidate was judged against popularity alone "
        f"and is not promoted over it ({champion_error}); promote it with `genrec promote VERSION` once checked"))


def champion_error(cfg: Config, champion: str | None) -> str | None:
    """Why the champion cannot be loaded, or None when it can (or there is none)."""
    from genrec.errors import UnloadableModelError

    if champion is None:
        return None
    try:
        registry.load_model(registry.version_uri(cfg.registry.model_name, champion))
    except UnloadableModelError as exc:
        return str(exc)
    return None


# --- the registry --------------------------------------------------------------------------------


def log_candidate(model: Recommender, data: Dataset, profile: DataProfile, cfg: Config) -> str:
    """Log the candidate as a servable model with what it trained on; returns its model URI."""
    from genrec.serving import ServingModel, example_request

    served = ServingModel.build(model, data, family=family_label(cfg, model))
    registry.log_reference(profile, TrainingReference.of(data))
    return registry.log_model(served, example_request(served))


def family_label(cfg: Config, model: Recommender | None = None) -> str:
    """The model's family as tags and reports name it (`cfgan+ease` for a blend; with the fitted
    `model`, the partner it fitted, e.g. `cfgan+ease-lowrank` above `model.blend_max_items`)."""
    parts = getattr(model, "fitted_parts", None)
    if parts and len(parts) > 1:
        return "+".join(part.name for part in parts)
    return cfg.model.name + (f"+{cfg.model.blend}" if cfg.model.blend != "none" else "")


def register(model_uri: str, tags: dict[str, Any], cfg: Config) -> str:
    """Register the candidate (it becomes `challenger`); promotion is a separate step."""
    return registry.register(model_uri, cfg.registry.model_name, tags)


def promote(version: str, reasons: list[str], cfg: Config, actor: str, champion_at_gate: str | None) -> str | None:
    """Move `champion` to `version`, but only over the champion the gate compared it with; returns
    the champion after."""
    name = cfg.registry.model_name
    try:
        registry.move_champion(name, version, reason="gate: " + "; ".join(reasons), actor=actor,
                               expected_from=champion_at_gate)
    except registry.ChampionMoved as exc:
        log.warning("not promoted: %s since the gate compared against it", exc)
    return registry.champion_version(name)
