"""Item attributes: reading tables, featurising them, the cold-start split, and the families that use
them, on small fixtures with known answers."""

import numpy as np
import pandas as pd
import pytest

from genrec import pipeline
from genrec.attributes import featurise
from genrec.config import FeatureConfig, load_config
from genrec.data import read_item_table
from genrec.dataset import TEST, TRAIN, VALIDATION
from genrec.errors import DataError
from genrec.models.families import make_model
from modeldata import dataset


def test_each_column_featurised_by_what_it_holds():
    items = pd.DataFrame({
        "item_id": ["a", "b", "c", "d", "e"],
        "title": ["A", "B", "C", "D", "E"],  # a display name, not a feature
        "action": [1, 0, 1, 0, 0],  # a flag
        "price": [1.0, 2.0, 3.0, 40.0, None],  # numbers: quantile bins
        "brand": ["acme", "acme", "zeta", None, None],  # a word: categorical
        "description": ["red candle holder", "blue candle holder", "red cotton apron", "green cotton apron", None],
    })
    features = featurise(items, 5, FeatureConfig(topics=2, bins=2))
    assert set(features.used) == {"action", "price", "brand", "description"}
    assert features.used["action"] == "flag" and features.used["brand"].startswith("categorical (2")
    assert features.used["price"].startswith("numeric (2") and features.used["description"].startswith("text (2 LDA")
    m = features.matrix.toarray()
    names = features.names
    assert m[0, names.index("action")] > 0 and m[1, names.index("action")] == 0
    assert m[0, names.index("brand=acme")] > 0 and m[2, names.index("brand=zeta")] > 0
    # Price bins: the two cheap items share a bin, the two dear ones the other; e has no price.
    low, high = names.index("price:bin0"), names.index("price:bin1")
    assert m[0, low] > 0 and m[1, low] > 0 and m[2, high] > 0 and m[3, high] > 0 and m[4, low] == m[4, high] == 0
    assert np.allclose(np.linalg.norm(m[:4], axis=1), 1.0)
    # Item e has nothing but a zero flag: an empty row.
    assert features.items_without == 1 and not m[4].any()
    assert featurise(None, 3).matrix.shape == (3, 0) and featurise(None, 3).items_without == 3


def test_item_tables_from_movielens_files_and_generic_csv(tmp_path):
    movies = tmp_path / "movies.csv"
    movies.write_text('movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,"Heat, The (1995)",Action\n'
                      "3,Nothing (2001),(no genres listed)\n")
    frame, suite = read_item_table(movies)
    assert suite == "items_table" and frame["item_id"].tolist() == ["1", "2", "3"]
    assert frame["year"].tolist() == [1995, 1995, 2001]
    assert frame["genre_comedy"].tolist() == [1, 0, 0] and "genre_(no genres listed)" not in frame
    generic = tmp_path / "catalogue.csv"
    generic.write_text("item_id,brand,price\n85123A,acme,2.5\n042,zeta,1\n")
    frame, _ = read_item_table(generic)
    assert frame["item_id"].tolist() == ["85123A", "042"]  # ids stay strings
    (tmp_path / "bad.csv").write_text("sku,price\n1,2\n")
    with pytest.raises(DataError, match="item_id"):
        read_item_table(tmp_path / "bad.csv")


def genre_shop(n_genres: int = 4, warm: int = 8, cold: int = 4, users_per_genre: int = 12, seed: int = 0):
    """Users each like one genre: in training each took five of its warm items in a random order,
    then one more (validation); after the cutoff each took one of its cold items (test), which no
    one had before. Items carry their genre; only the attributes tell a cold item's genre."""
    rng = np.random.default_rng(seed)
    per = warm + cold
    rows, times = [], []
    for g in range(n_genres):
        for j in range(users_per_genre):
            u = g * users_per_genre + j
            chosen = rng.permutation(warm)[:6] + g * per
            for t, item in enumerate(chosen):
                rows.append((u, int(item), VALIDATION if t == 5 else TRAIN))
                times.append(1_600_000_000 + t)
            rows.append((u, int(g * per + warm + rng.integers(cold)), TEST))
            times.append(1_700_000_000)
    n_items = n_genres * per
    data = dataset(rows, n_genres * users_per_genre, n_items, times)
    data.items = pd.DataFrame({"item_id": data.item_ids.astype(str), "genre": [f"g{i // per}" for i in range(n_items)]})
    return data


def test_the_cold_start_split_scores_warm_and_cold_items_apart():
    data = genre_shop()
    assert data.cold_items.tolist() == [g * 12 + c for g in range(4) for c in range(8, 12)]
    groups = pipeline.evaluate_cold_start(make_model(load_config("tiny", ["model.name=pop"])).fit(data), data,
                                          load_config("tiny"))
    # Every test item is cold: no user has a warm one to score, all 48 have a cold one.
    assert len(groups["warm"].users) == 0 and len(groups["cold"].users) == 48
    # Popularity gives every cold item 0: ties go to the lowest indices, genre g0's four cold items
    # (the test items of g0's 12 users) and g1's first, item 20.
    takers_of_20 = int((data.test[:, 20].toarray() > 0).sum())
    assert groups["cold"].metrics["recall@5"] == pytest.approx((12 + takers_of_20) / 48)


@pytest.mark.parametrize("family, overrides, least, most", [
    ("content-knn", [], 0.95, 1.0),
    ("seqgan", ["model.attributes=true"], 0.95, 1.0),
    ("seqgan", [], 0.0, 0.6),  # the id-only twin: a cold item's embedding is untrained
    ("cfgan", ["model.attributes=true"], 0.95, 1.0),
    ("cfgan", [], 0.0, 0.6),
    ("attribute-pop", [], 0.0, 0.6),  # the same ranking for everyone: the genres are equally popular
])
def test_only_attributes_tell_which_cold_items_a_user_wants(family, overrides, least, most):
    data = genre_shop()
    extra = {"seqgan": ["model.dim=32", "model.layers=1", "model.adversarial=false", "train.epochs=60"],
             "cfgan": ["model.scheme=ZR", "train.epochs=60", "train.patience=60"]}.get(family, [])
    cfg = load_config("tiny", [f"model.name={family}", *extra, *overrides])
    groups = pipeline.evaluate_cold_start(make_model(cfg).fit(data), data, cfg)
    # Among 16 cold items, each user's genre has 4: recall@5 by chance is about 5/16.
    recall = groups["cold"].metrics["recall@5"]
    assert least <= recall <= most, recall


@pytest.mark.parametrize("family, extra", [
    ("seqgan", ["model.dim=32", "model.layers=1", "model.adversarial=false", "model.id_dropout=0.5",
                "train.epochs=5"]),
    ("cfgan", ["model.id_dropout=0.5", "train.epochs=5"]),
])
def test_a_fitted_model_scores_as_its_trained_item_table_without_dropout(family, extra):
    """The id dropout is a training-time draw: the model kept is the same on every fit with the same
    seed, and scores every warm item by its id row (nothing of it dropped)."""
    import torch

    data = genre_shop()
    cfg = load_config("tiny", [f"model.name={family}", "model.attributes=true", *extra])
    first = make_model(cfg).fit(data).score_users(np.arange(8))
    torch.rand(3)  # whatever the process drew in between
    np.testing.assert_array_equal(make_model(cfg).fit(data).score_users(np.arange(8)), first)
