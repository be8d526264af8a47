"""Hyperparameters are chosen on a validation carve-out of the training data, never on test."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from conftest import clustered_interactions
from modeldata import dataset
from genrec.cli import app
from genrec.dataset import TRAIN, VALIDATION
from genrec.models.ease import EASE, EASEConfig, ease_weights
from genrec.models.tuning import carve_outs, choose_on_carve_outs, choose_on_validation


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


CFGAN_BLEND = ["--config", "tiny", "--set", "model.blend=ease", "--set", "train.refit=true"]


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
    rows = [(u, i, TRAIN) for u, i in zip(*train.nonzero())] + [(u, i, VALIDATION) for u, i in zip(*validation.nonzero())]
    data = dataset(rows, *train.shape)
    model = EASE(EASEConfig(lambdas=lambdas, tuning_repeats=1)).fit(data)
    assert model.lambda_ == chosen
    # Refitted on train + validation afterwards.
    np.testing.assert_allclose(model.weights_, ease_weights(data.known, chosen))


def _train_validation(seed=0, users=40, items=30, per_user=8):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), per_user)
    cols = np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)])
    held = np.tile(np.arange(per_user) < 2, users)  # two validation items per user
    held[rows < 5] = False  # five users with no validation interactions
    make = lambda keep: sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols[keep])), shape=(users, items))
    return make(~held), make(held)


def test_carve_outs_redraw_validation_from_train_and_validation_only():
    train, validation = _train_validation()
    folds = carve_outs(train, validation, repeats=4)
    assert len(folds) == 4 and folds[0][0] is train and folds[0][1] is validation
    union = (train + validation).toarray()
    per_user = np.diff(validation.indptr)
    for fold_train, fold_validation in folds[1:]:
        a, b = fold_train.toarray(), fold_validation.toarray()
        assert not (a * b).any() and np.array_equal(a + b, union)  # a partition of the same interactions
        assert np.array_equal(np.diff(fold_validation.indptr), per_user)  # each user's count kept
    assert not np.array_equal(folds[1][1].toarray(), folds[2][1].toarray())  # different draws
    again = carve_outs(train, validation, repeats=4)
    assert all(np.array_equal(f[1].toarray(), g[1].toarray()) for f, g in zip(folds, again))  # fixed seed


def test_the_mean_over_carve_outs_overrules_one_carve_out():
    """A candidate that knows the given validation split wins on it alone; on carve-outs drawn
    afresh it knows nothing, so the mean over five picks the candidate that is good on every one."""
    rng = np.random.default_rng(1)
    users, items = 200, 50
    popularity = np.linspace(1.0, 0.01, items)
    dense = rng.random((users, items)) < popularity * 0.5  # popular items are popular everywhere
    rows, cols = dense.nonzero()
    held = np.zeros(len(rows), bool)
    for u in range(users):
        mine = np.flatnonzero(rows == u)
        if len(mine) >= 3:
            held[rng.choice(mine, 1)] = True
    make = lambda keep: sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols[keep])), shape=(users, items))
    train, validation = make(~held), make(held)
    counts = np.asarray(train.sum(axis=0)).ravel()

    users_by_row = {tuple(train[u].indices): u for u in range(users)}

    def knows_the_split(history):
        """The given split's validation items first, for the rows of the given training part; the
        rest (and every row it does not recognise) by reverse popularity."""
        scores = np.tile(-counts, (history.shape[0], 1))
        for i in range(history.shape[0]):
            u = users_by_row.get(tuple(history[i].indices))
            if u is not None:
                scores[i, validation[u].indices] = 1e6
        return scores

    def scorers_on(fold_train):
        return lambda name: knows_the_split if name == "knows-the-split" else (
            lambda history: np.tile(counts, (history.shape[0], 1)))

    one, one_scores = choose_on_carve_outs(["popularity", "knows-the-split"], scorers_on, train, validation, repeats=1)
    assert one == "knows-the-split" and one_scores["knows-the-split"] > 0.99
    five, five_scores = choose_on_carve_outs(["popularity", "knows-the-split"], scorers_on, train, validation,
                                             repeats=5)
    assert five == "popularity" and five_scores["knows-the-split"] < 0.5
    assert choose_on_validation(["popularity", "knows-the-split"], scorers_on(train), train, validation)[0] == one
