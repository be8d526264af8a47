import numpy as np
import pandas as pd

from genrec.config import DataConfig, PrepareConfig
from genrec.preprocessing import fingerprint, prepare, split_per_user, to_implicit


def _frame():
    rows = [(f"u{u}", f"i{i}", float(1 + (u + i) % 5), pd.Timestamp(1_600_000_000 + u * 100 + i, unit="s"))
            for u in range(20) for i in range(u % 7 + 1, u % 7 + 11)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_implicit_threshold_and_duplicates():
    df = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": ["x", "x", "y", "x"],
                       "rating": [5.0, 2.0, 1.0, 4.0], "timestamp": pd.to_datetime([3, 4, 5, 6], unit="s")})
    out = to_implicit(df, DataConfig(), PrepareConfig())
    assert sorted(zip(out["user_id"], out["item_id"])) == [("a", "x"), ("a", "y"), ("b", "x")]
    out = to_implicit(df, DataConfig(rating_threshold=4), PrepareConfig())
    assert sorted(zip(out["user_id"], out["item_id"])) == [("a", "x"), ("b", "x")]


def test_split_is_seeded_per_user_and_disjoint():
    users = np.repeat(np.arange(4), [10, 10, 2, 5])
    cfg = PrepareConfig(test_fraction=0.2, validation_fraction=0.25, min_interactions_to_split=3, seed=1)
    part = split_per_user(users, 4, cfg)
    assert np.array_equal(part, split_per_user(users, 4, cfg))
    assert not np.array_equal(part, split_per_user(users, 4, PrepareConfig(seed=2, test_fraction=0.2,
                                                                              validation_fraction=0.25)))
    for u, n_test, n_val in [(0, 2, 2), (1, 2, 2), (2, 0, 0), (3, 1, 1)]:
        p = part[users == u]
        assert (p == 2).sum() == n_test and (p == 1).sum() == n_val


def test_prepare_builds_sparse_splits_and_fingerprint():
    df = _frame()
    data = prepare(df, PrepareConfig())
    assert data.n_users == 20 and data.n_items == df["item_id"].nunique()
    total = data.train + data.validation + data.test
    assert total.nnz == len(df) and total.max() == 1  # disjoint and complete
    assert data.user_ids.tolist() == sorted(df["user_id"].unique())
    assert data.train_cutoff is not None


def test_the_fingerprint_identifies_the_split():
    """The same rows in another order split otherwise: their fingerprint differs too; so does the
    same data split with other settings. Equal fingerprints mean equal splits."""
    df = _frame()
    data = prepare(df, PrepareConfig())
    again = prepare(df.copy(), PrepareConfig())
    assert again.fingerprint == data.fingerprint and (again.train != data.train).nnz == 0
    shuffled = prepare(df.sample(frac=1, random_state=3), PrepareConfig())
    assert (shuffled.train != data.train).nnz > 0 and shuffled.fingerprint != data.fingerprint
    assert prepare(df, PrepareConfig(seed=7)).fingerprint != data.fingerprint
    assert fingerprint(df.iloc[1:], PrepareConfig()) != fingerprint(df, PrepareConfig())


def test_zero_fractions_hold_nothing_out():
    users = np.repeat(np.arange(3), 10)
    part = split_per_user(users, 3, PrepareConfig(test_fraction=0.25, validation_fraction=0.0))
    assert set(np.unique(part)) == {0, 2}
    assert (split_per_user(users, 3, PrepareConfig(test_fraction=0.0, validation_fraction=0.0)) == 0).all()


def test_from_split_keeps_every_training_interaction():
    from genrec.preprocessing import from_split

    train = _frame()
    test = train.groupby("user_id").head(1).assign(item_id="i3")
    test = test[~test.set_index(["user_id", "item_id"]).index.isin(train.set_index(["user_id", "item_id"]).index)]
    data = from_split(train, test, PrepareConfig(validation_fraction=0.2))
    assert data.train.nnz + data.validation.nnz == len(train)
    assert data.validation.nnz > 0 and data.test.nnz == len(test)
