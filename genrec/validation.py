"""Data validation with Great Expectations 1.x: the suites in `expectations/`, Data Docs on disk.

One `DataValidator` serves one run: every suite it runs lands in the same Data Docs site, a folder
of its own under `GENREC_HOME/data_docs/`, so earlier runs' reports are never overwritten.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genrec.config import ValidationConfig
from genrec.data_docs import localise
from genrec.errors import UsageError

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parent / "expectations"
"""The suites: `expectations/` of the checkout (genrec/expectations links to it), shipped in the wheel."""


def raw_suite_name(fmt: str) -> str:
    """The raw-input suite of a format (`parquet` shares the `csv` suite)."""
    return "raw_" + ("csv" if fmt == "parquet" else fmt).replace("-", "_")


def load_suite_spec(name: str, suites_dir: Path = SUITES_DIR) -> dict[str, Any]:
    path = suites_dir / f"{name}.json"
    if not path.is_file():
        raise UsageError(f"No expectation suite {name!r} at {path}.")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, flattened for tables, artifacts and error messages."""

    suite: str
    expectation: str
    column: str | None
    success: bool
    observed: Any
    threshold: str
    unexpected_count: int | None
    examples: list[Any]
    notes: str = ""

    def sentence(self) -> str:
        """What failed, in words a person reads: which column, how many rows, an example."""
        col = f"column {self.column!r}"
        rows = _count(self.unexpected_count or 0, "row")
        example = f" (e.g. {_short(self.examples[0])})" if self.examples else ""
        kind = self.expectation
        if kind == "expect_column_to_exist":
            return f"{col} is missing"
        if kind == "expect_table_row_count_to_be_between":
            if self.observed == 0:
                return "the file has no data rows"
            unit = "interaction" if self.suite == "prepared_interactions" else "row"
            return f"there are {_count(self.observed, unit)}, expected {self.threshold}"
        if kind == "expect_column_values_to_not_be_null":
            return f"{col} is empty in {rows}"
        if kind == "expect_column_values_to_match_regex":
            return f"{col} has a value not of the expected form in {rows}{example}"
        if kind == "expect_column_value_lengths_to_be_between":
            return f"{col} has a value longer than allowed ({self.threshold} characters) in {rows}{example}"
        if kind == "expect_column_values_to_be_between":
            return f"{col} has a value out of range ({self.threshold}) in {rows}{example}"
        if kind == "expect_column_unique_value_count_to_be_between":
            what = {"user_id": "user", "item_id": "item"}.get(self.column or "", "distinct value")
            return f"{col} has {_count(self.observed, what)}, expected {self.threshold}"
        if kind == "expect_compound_columns_to_be_unique":
            return f"{rows} repeat a ({self.column}) pair{example}"
        what = kind.removeprefix("expect_").replace("_", " ")
        return f"{col if self.column else 'the table'}: {what} failed (observed {self.observed!r})"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + f"...' ({len(str(value))} characters)"


@dataclass
class ValidationReport:
    suite: str
    success: bool
    outcomes: list[Outcome] = field(default_factory=list)
    data_docs: Path | None = None
    columns: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        """One sentence; checks on a missing column are left out (the column's absence says it)."""
        failed = self.failures
        if not failed:
            return f"{self.suite}: all {len(self.outcomes)} expectations passed"
        missing = {o.column for o in failed if o.expectation == "expect_column_to_exist"}
        shown = [o for o in failed if o.expectation == "expect_column_to_exist" or o.column not in missing]
        text = "; ".join(o.sentence() for o in shown)
        if missing and self.columns:
            found = ", ".join(repr(c) for c in self.columns[:8])
            text += f" (columns found: {found}"
            if len(self.columns) == 1 and any(sep in self.columns[0] for sep in ";|\t"):
                text += "; is the delimiter right?"
            text += ")"
        return f"{text} [suite {self.suite}]"


def _threshold(kwargs: dict[str, Any]) -> str:
    parts = []
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        parts.append(f"between {low} and {high}")
    elif low is not None:
        parts.append(f"at least {low}")
    elif high is not None:
        parts.append(f"at most {high}")
    if kwargs.get("regex"):
        parts.append(f"matching {kwargs['regex']}")
    if kwargs.get("mostly") is not None:
        parts.append(f"in {kwargs['mostly']:.1%} of rows")
    return ", ".join(parts)


class DataValidator:
    """Runs named suites on data frames and writes Data Docs to `docs_dir`."""

    def __init__(self, docs_dir: Path, suites_dir: Path = SUITES_DIR):
        import great_expectations as gx
        from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults
        from great_expectations.execution_engine import pandas_execution_engine

        # GX marks each pandas batch with a hash of all its rows (frames under this many bytes), 4 s
        # for the 4M rows of benchmarks/scale.py's M, for each suite. genrec fingerprints the data
        # itself (preprocessing's `fingerprint`), so GX's is not computed.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.docs_dir = Path(docs_dir)
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.suites_dir = suites_dir
        self._gx = gx
        # In-memory stores and no temporary docs site: the only files written are our Data Docs.
        self._ctx = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
            ),
        )
        self._ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
        self._ctx.add_data_docs_site(
            site_name="genrec",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(self.docs_dir),
                },
            },
        )
        self._runs = 0
        self._asset = self._ctx.data_sources.add_pandas("genrec").add_dataframe_asset("data")

    @property
    def index(self) -> Path:
        return self.docs_dir / "index.html"

    def _suite(self, name: str, columns: set[str]):
        from great_expectations.core.expectation_suite import ExpectationSuite
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        spec = load_suite_spec(name, self.suites_dir)
        configs = []
        for exp in spec["expectations"]:
            meta = exp.get("meta", {})
            column = exp["kwargs"].get("column")
            # An optional column's checks apply only where the column is present.
            if meta.get("optional_column") and column not in columns:
                continue
            configs.append(ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=meta))
        return ExpectationSuite(name=name, expectations=configs, meta=spec.get("meta", {}))

    def validate(self, frame: pd.DataFrame, suite: str, parameters: dict[str, Any] | None = None) -> ValidationReport:
        """Validate `frame` against `suite`; `parameters` fill the suite's `$PARAMETER`s."""
        gx = self._gx
        self._runs += 1
        name = f"{suite}-{self._runs}"
        spec = self._suite(suite, set(frame.columns))
        spec.name = name
        suite_obj = self._ctx.suites.add(spec)
        batch = self._asset.add_batch_definition_whole_dataframe(name)
        definition = self._ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite_obj)
        )
        checkpoint = self._ctx.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs", site_names=["genrec"])],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 3},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": _nanoseconds(frame)},
                                expectation_parameters=parameters or {})
        localise(self.docs_dir)  # the rebuilt pages load genrec's copies of their CDN files
        outcomes = []
        for run_result in result.run_results.values():
            for r in run_result.results:
                cfg = r.expectation_config
                res = r.result or {}
                outcomes.append(
                    Outcome(
                        suite=suite,
                        expectation=cfg.type,
                        column=cfg.kwargs.get("column") or (",".join(cfg.kwargs.get("column_list", [])) or None),
                        success=bool(r.success),
                        observed=_plain(res.get("observed_value")),
                        threshold=_threshold(cfg.kwargs),
                        unexpected_count=res.get("unexpected_count"),
                        examples=[_plain(v) for v in (res.get("partial_unexpected_list") or [])[:3]],
                        notes=(cfg.meta or {}).get("notes", ""),
                    )
                )
                if r.exception_info and r.exception_info.get("raised_exception"):
                    log.warning("expectation %s raised: %s", cfg.type, r.exception_info.get("exception_message"))
        report = ValidationReport(suite=suite, success=bool(result.success), outcomes=outcomes, data_docs=self.index,
                                  columns=[str(c) for c in frame.columns])
        log.info("%s", report.summary())
        return report


def _nanoseconds(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its naive datetime columns at nanosecond resolution where their values fit:
    GX compares a datetime column vectorised only at that resolution, value by value in Python
    otherwise (pandas 3 parses to microseconds; 8 s for 3.9M rows)."""
    bounds = (pd.Timestamp.min, pd.Timestamp.max)
    convert = [c for c in frame.columns if pd.api.types.is_datetime64_dtype(frame[c].dtype)
               and frame[c].dtype != "datetime64[ns]"
               and (frame[c].isna().all() or bounds[0] <= frame[c].min() and frame[c].max() <= bounds[1])]
    return frame.astype({c: "datetime64[ns]" for c in convert}) if convert else frame


def _plain(value: Any) -> Any:
    """JSON-friendly value for reports (timestamps to ISO text, NaN to None)."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def validate_prepared(validator: DataValidator, implicit: pd.DataFrame, cfg: ValidationConfig) -> ValidationReport:
    """The strict suite on prepared interactions, with the config's thresholds."""
    has_time = implicit["timestamp"].notna().any()
    frame = implicit[["user_id", "item_id"] + (["timestamp"] if has_time else [])]
    frame = frame.assign(
        user_interactions=frame.groupby("user_id")["item_id"].transform("size"),
        item_interactions=frame.groupby("item_id")["user_id"].transform("size"),
    )
    return validator.validate(frame, "prepared_interactions", {
        "min_interactions": cfg.min_interactions,
        "min_users": cfg.min_users,
        "min_items": cfg.min_items,
        "min_user_interactions": cfg.min_user_interactions,
        "min_item_interactions": cfg.min_item_interactions,
        "min_timestamp": pd.Timestamp("1970-01-01"),
        "max_timestamp": pd.Timestamp.now().normalize() + pd.Timedelta(days=2),  # whole days: a stable threshold
    })
