"""Hyperparameters are chosen on a validation carve-out of the training data, never on test."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from conftest import clustered_interactions
from genrec.cli import app
from genrec.models.ease import EASE, ease_weights
from genrec.models.tuning import choose_on_validation


def _write_split(tmp_path):
    df = clustered_interactions(n_clusters=3, users_per_cluster=25, items_per_cluster=20, density=0.5, seed=3)
    rng = np.random.default_rng(0)
    is_test = rng.random(len(df)) < 0.2
    train, test = df[~is_test], df[is_test]
    test = test[test["item_id"].isin(train["item_id"])]
    # A second test file: the same users, random items they did not touch in train.
    items = train["item_id"].unique()
    noise = pd.DataFrame({"user_id": test["user_id"], "item_id": rng.choice(items, len(test))})
    noise = noise.merge(train[["user_id", "item_id"]], how="left", indicator=True)
    noise = noise[noise["_merge"] == "left_only"].drop(columns="_merge").drop_duplicates()
    paths = {}
    for name, frame in {"train": train, "test": test, "noise": noise}.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame[["user_id", "item_id"]].to_csv(paths[name], index=False)
    return paths


CFGAN_BLEND = ["--config", "tiny", "--set", "model.blend=ease", "--set", "model.refit=true"]


@pytest.mark.parametrize("model", ["ease", "itemknn", "cfgan"])
def test_choice_does_not_depend_on_the_test_file(tmp_path, model):
    """If tuning read --test, a test file of random items would move the choice (for CFGAN: the
    epochs, EASE's lambda and the blend weight). It must not."""
    paths = _write_split(tmp_path)
    extra = CFGAN_BLEND if model == "cfgan" else []
    results = []
    for test in ("test", "noise"):
        result = CliRunner().invoke(app, ["evaluate", "--train", str(paths["train"]), "--test", str(paths[test]),
                                          "--format", "csv", "--model", model, "--json", *extra])
        assert result.exit_code == 0, result.stderr
        results.append(json.loads(result.stdout))
    real, noise = results
    assert real["chosen_on_validation"] == noise["chosen_on_validation"] != {}
    if model == "cfgan":
        assert {"epochs", "blend_weight", "ease_lambda"} <= set(real["chosen_on_validation"])
    assert real["metrics"]["ndcg@20"] > noise["metrics"]["ndcg@20"] + 0.1  # the test files really differ


def test_choose_on_validation_picks_the_validation_best():
    train, validation = sp.random(60, 30, density=0.2, format="csr", random_state=1), None
    train.data[:] = 1
    rows, cols = (train == 0).nonzero()
    pick = np.random.default_rng(2).choice(len(rows), 60, replace=False)
    validation = sp.csr_matrix((np.ones(60), (rows[pick], cols[pick])), shape=train.shape)
    lambdas = (1.0, 10.0, 100.0, 1000.0)
    chosen, scores = choose_on_validation(lambdas, lambda lam: (lambda h: np.asarray(h @ ease_weights(train, lam))),
                                          train, validation)
    assert chosen == max(lambdas, key=lambda lam: scores[str(lam)])
    model = EASE(lambdas=lambdas).fit(train, validation)
    assert model.lambda_ == chosen
    # Refitted on train + validation afterwards.
    assert model.train_.nnz == train.nnz + validation.nnz
