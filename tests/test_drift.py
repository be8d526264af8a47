"""Drift against the champion's training data: known answers, then warn or reject in the flow."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import clustered_interactions
from genrec import registry
from genrec.cli import app
from genrec.drift import DataProfile, compare


def _frame(pairs, ratings=None):
    df = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    return df.assign(rating=np.nan if ratings is None else ratings, timestamp=pd.NaT)


def test_identical_data_has_no_drift():
    p = DataProfile.of(_frame([("1", "a"), ("2", "a"), ("2", "b")], [5.0, 4.0, 4.0]))
    assert compare(p, p) == {"size_change": 0.0, "new_users_share": 0.0, "new_items_share": 0.0,
                             "popularity_shift": 0.0, "rating_shift": 0.0}


def test_known_drift_values():
    ref = DataProfile.of(_frame([("1", "a"), ("2", "a"), ("2", "b"), ("3", "b")], [5.0, 5.0, 1.0, 1.0]))
    new = DataProfile.of(_frame([("1", "c"), ("4", "c")], [5.0, 5.0]))
    m = compare(ref, new)
    assert m["size_change"] == pytest.approx(0.5)  # 2 interactions instead of 4
    assert m["new_users_share"] == pytest.approx(0.5)  # user 4 is new, user 1 is not
    assert m["new_items_share"] == pytest.approx(1.0)
    assert m["popularity_shift"] == pytest.approx(1.0)  # disjoint item sets: JS divergence 1 (base 2)
    assert m["rating_shift"] == pytest.approx(0.5)  # {5: .5, 1: .5} vs {5: 1}


def test_profile_round_trip(tmp_path):
    p = DataProfile.of(_frame([("1", "a"), ("2", "b")]))
    q = DataProfile.load(p.save(tmp_path / "ref"))
    assert compare(p, q)["popularity_shift"] == 0.0 and q.rating_histogram == {}


@pytest.mark.usefixtures("prefect_harness")
def test_flow_warns_or_rejects_as_configured(genrec_home, clustered_csv, tmp_path):
    def run(path, *sets):
        args = ["run", "--data", str(path), "--format", "csv", "--config", "tiny", "--json"]
        for s in sets:
            args += ["--set", s]
        result = CliRunner().invoke(app, args)
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run(clustered_csv)
    assert code == 0, err
    # The same shape of data, but every user is new.
    shifted = clustered_interactions(seed=5).assign(user_id=lambda d: "new-" + d["user_id"])
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)

    code, out, err = run(path, "drift.reject=new_users_share")
    assert code == 3 and "drift" in err and "new_users_share is 1.000, above 0.6" in err
    assert json.loads(out)["status"] == "data_rejected"
    assert [v["version"] for v in registry.list_versions("genrec")] == ["1"]

    code, out, err = run(path)  # warn only (the default): trained, gated, registered
    assert code == 0, err
    result = json.loads(out)
    checks = {c["metric"]: c for c in result["drift"]}
    assert checks["new_users_share"]["passed"] is False and checks["new_users_share"]["action"] == "warn"
    assert checks["new_users_share"]["value"] == 1.0
    assert checks["new_items_share"]["passed"] is True  # same items
    assert result["model_version"] == "2"
