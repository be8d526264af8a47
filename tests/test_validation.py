"""Good and bad frames through the real Great Expectations suites."""

import json

import pandas as pd
import pytest

from genrec.data import FORMATS, read_raw
from genrec.validation import SUITES_DIR, DataValidator, raw_suite_name

@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    return DataValidator(tmp_path_factory.mktemp("docs"))


def test_every_format_has_a_suite_file():
    for fmt in FORMATS:
        spec = json.loads((SUITES_DIR / f"{raw_suite_name(fmt)}.json").read_text())
        assert spec["expectations"]


def test_good_csv_passes_and_writes_data_docs(validator):
    frame = pd.DataFrame({"user_id": ["1", "2"], "item_id": ["a", "b"], "rating": ["4", "3.5"]})
    report = validator.validate(frame, "raw_csv")
    assert report.success and not report.failures
    assert validator.index.is_file()
    assert any(validator.docs_dir.joinpath("validations").rglob("*.html"))


def test_bad_csv_names_column_count_and_example(validator):
    frame = pd.DataFrame({"user_id": ["1", None, "3"], "item_id": ["a", "b", "c"], "rating": ["4", "x", "2"]})
    report = validator.validate(frame, "raw_csv")
    assert not report.success
    failed = {(o.column, o.expectation): o for o in report.failures}
    assert failed[("user_id", "expect_column_values_to_not_be_null")].unexpected_count == 1
    assert failed[("rating", "expect_column_values_to_match_regex")].examples == ["x"]
    assert "'rating'" in report.summary() and "'x'" in report.summary()


def test_optional_columns_are_checked_only_when_present(validator):
    frame = pd.DataFrame({"user_id": ["1"], "item_id": ["a"]})
    assert validator.validate(frame, "raw_csv").success


def test_missing_required_column_fails(validator):
    report = validator.validate(pd.DataFrame({"user": ["1"], "item_id": ["a"]}), "raw_csv")
    assert not report.success
    assert any(o.column == "user_id" for o in report.failures)


def test_prepared_suite_rejects_duplicates_future_timestamps_and_rare_users(validator):
    from genrec.config import ValidationConfig
    from genrec.validation import validate_prepared

    cfg = ValidationConfig(min_interactions=3, min_users=2, min_items=2)
    good = pd.DataFrame({"user_id": ["1", "1", "2"], "item_id": ["a", "b", "a"],
                         "timestamp": pd.to_datetime(["2020-01-01"] * 3)})
    assert validate_prepared(validator, good, cfg).success
    dup = pd.concat([good, good.iloc[:1]])
    report = validate_prepared(validator, dup, cfg)
    assert [o.expectation for o in report.failures] == ["expect_compound_columns_to_be_unique"]
    future = good.assign(timestamp=pd.to_datetime(["2020-01-01", "2020-01-01", "2099-01-01"]))
    report = validate_prepared(validator, future, cfg)
    assert [o.column for o in report.failures] == ["timestamp"]
    report = validate_prepared(validator, good, ValidationConfig(min_interactions=3, min_users=2, min_items=2,
                                                                 min_user_interactions=2))
    assert [o.column for o in report.failures] == ["user_interactions"]
    assert report.failures[0].observed == 1
    no_time = good.assign(timestamp=pd.NaT)
    assert validate_prepared(validator, no_time, cfg).success


def test_real_movielens_and_retail_raw_files_pass(validator):
    from conftest import shared

    from genrec.data import bundled_sample

    for path in (bundled_sample(), shared("ml-100k", "u.data")):
        raw = read_raw(path)
        assert validator.validate(raw.frame, raw_suite_name(raw.format)).success


def test_item_attribute_suites(validator, tmp_path):
    from genrec.data import item_attributes

    from broken_inputs import RETAIL_HEADER, _retail_rows

    path = tmp_path / "retail.csv"
    path.write_text("\n".join([RETAIL_HEADER] + _retail_rows()) + "\n")
    frame, suite = item_attributes(read_raw(path, "online-retail"))
    assert suite == "items_online_retail" and len(frame) == 15
    assert validator.validate(frame, suite).success
    bad = frame.assign(price=-frame["price"])
    report = validator.validate(bad, suite)
    assert [o.column for o in report.failures] == ["price"] and report.failures[0].unexpected_count == 15


def test_movielens_genres_suite(validator):
    from conftest import shared

    from genrec.data import item_attributes

    frame, suite = item_attributes(read_raw(shared("ml-100k", "u.data")))
    assert suite == "items_movielens_100k" and len(frame) == 1682
    assert validator.validate(frame, suite).success
    broken = frame.assign(comedy=frame["comedy"].where(frame.index > 0, 7))
    assert [o.column for o in validator.validate(broken, suite).failures] == ["comedy"]
