"""Item attributes through the whole system: a catalogue given with `data.items`, each generator
family trained on it by the flow under the Prefect harness, the report saying what was used, and the
registered model recommending, by name, catalogue items nobody has bought yet."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import clustered_interactions, home_env
from genrec import registry
from genrec.cli import app
from genrec.reporting import run_markdown

pytestmark = pytest.mark.usefixtures("prefect_harness")

FAMILIES = {
    "cfgan": ["model.name=cfgan", "model.scheme=ZR", "train.epochs=60", "train.patience=60"],
    "seqgan": ["model.name=seqgan", "model.dim=32", "model.layers=1", "model.adversarial=false", "train.epochs=40"],
}


def catalogue() -> pd.DataFrame:
    """Every item of the clustered log with its cluster as category, plus five new items per
    cluster that no one has bought."""
    rows = [(f"i{c}-{i}", f"c{c}", f"Item {i} of cluster {c}") for c in range(4) for i in range(25)]
    rows += [(f"new{c}-{i}", f"c{c}", f"New item {i} of cluster {c}") for c in range(4) for i in range(5)]
    return pd.DataFrame(rows, columns=["item_id", "category", "name"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_generator_recommends_new_catalogue_items_by_their_attributes(family, tmp_path):
    log, items = tmp_path / "log.csv", tmp_path / "items.csv"
    clustered_interactions().to_csv(log, index=False)
    catalogue().to_csv(items, index=False)
    with home_env(tmp_path / "home"):
        from flows.training import train_flow

        result = train_flow(data=str(log), format="csv", config="tiny",
                            overrides=[*FAMILIES[family], f"data.items={items}", "model.attributes=true"])
        assert result["status"] == "promoted", result["decision"]
        assert result["dataset"]["items"] == 120  # the 20 new items are in the catalogue
        assert result["attributes"] == {"columns": {"category": "categorical (4 values)"}, "features": 4,
                                        "items": 120, "items_without_attributes": 0}
        assert "## Item attributes used" in run_markdown(result)

        served = registry.load_model(registry.version_uri("genrec", result["model_version"]))
        history = [f"i2-{i}" for i in range(0, 10)]
        answer = served.predict(pd.DataFrame({"user_id": ["someone"], "history": [history]}), params={"k": 110}).iloc[0]
        new = [item for item in answer["items"] if item.startswith("new")]
        # Every new item can be recommended, and those of the history's cluster come first.
        assert len(new) == 20 and sorted(new[:5]) == [f"new2-{i}" for i in range(5)], new
        assert answer["names"][answer["items"].index("new2-0")] == "New item 0 of cluster 2"

        # The id-only twin trains through `genrec run` on the same catalogue, reading no attribute.
        run = CliRunner().invoke(app, ["run", "--data", str(log), "--format", "csv", "--config", "tiny",
                                       *[a for o in FAMILIES[family] for a in ("--set", o)],
                                       "--set", f"data.items={items}", "--json"])
        assert run.exit_code == 0, run.stderr
        twin = json.loads(run.stdout)
        assert twin["attributes"] is None and twin["dataset"]["items"] == 120


def test_evaluate_a_cold_start_split_from_the_command_line(tmp_path):
    """Users of four categories buy six of its old items before the cutoff, then one old and one new
    item after it; the new items are first seen after the cutoff: cold."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows, t0 = [], 1_600_000_000
    for c in range(4):
        for j in range(15):
            user = f"u{c}-{j}"
            rows += [(user, f"i{c}-{i}", t0 + k) for k, i in enumerate(rng.permutation(20)[:6])]
            rows += [(user, f"i{c}-{rng.integers(20)}", t0 + 10_000), (user, f"new{c}-{rng.integers(5)}", t0 + 10_001)]
    log, items = tmp_path / "log.csv", tmp_path / "items.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(log, index=False)
    table = pd.DataFrame([(f"i{c}-{i}", f"c{c}") for c in range(4) for i in range(20)] +
                         [(f"new{c}-{i}", f"c{c}") for c in range(4) for i in range(5)], columns=["item_id", "category"])
    table.to_csv(items, index=False)
    cutoff = pd.Timestamp(t0 + 5_000, unit="s").isoformat()
    with home_env(tmp_path / "home"):
        run = CliRunner().invoke(app, ["evaluate", "--data", str(log), "--format", "csv", "--items", str(items),
                                       "--split", "cold-start", "--cutoff", cutoff, "--model", "content-knn",
                                       "--config", "tiny", "--json"])
        assert run.exit_code == 0, run.stderr
        out = json.loads(run.stdout)
        assert out["model"] == "content-knn" and out["cutoff"] == cutoff
        assert out["cold_items"] == 20 and out["warm_items"] == 80 and out["users"] == {"warm": 60, "cold": 60}
        # A new item's category names its buyers' category: its 5 cold items of that category come first.
        assert out["cold"]["recall@5"] == 1.0
        bad = CliRunner().invoke(app, ["evaluate", "--data", str(log), "--format", "csv", "--split", "cold-start",
                                       "--cutoff", "2031-01-01", "--model", "pop", "--config", "tiny"])
        assert bad.exit_code == 2 and "pick a date inside the log" in bad.stderr
