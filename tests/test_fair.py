"""The gate never tests the champion on interactions it trained on."""

import numpy as np
import pandas as pd

from genrec.config import PrepareConfig
from genrec.evaluation import evaluate_scores
from genrec.fair import TrainingReference, fair_test
from genrec.preprocessing import prepare


def _data(seed, with_time=True, n_users=30, n_items=40):
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", 1.0, pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 400))))
            for u in range(n_users) for i in rng.choice(n_items, 12, replace=False)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    if not with_time:
        df["timestamp"] = pd.NaT
    return prepare(df, PrepareConfig(seed=seed))


def _pairs(data, matrix):
    m = matrix.tocoo()
    return set(zip(data.user_ids[m.row], data.item_ids[m.col]))


def test_without_timestamps_only_unseen_pairs_remain():
    champion_data = _data(seed=1, with_time=False)
    new = _data(seed=2, with_time=False)  # the same interactions, split another way
    reference = TrainingReference.of(champion_data)
    fair, info = fair_test(new, reference)
    seen = _pairs(champion_data, champion_data.train + champion_data.validation)
    kept, all_test = _pairs(new, fair.test), _pairs(new, new.test)
    assert kept == all_test - seen  # exactly what the champion never trained on
    assert info["removed"] == len(all_test & seen) > 0 and info["interactions"] == len(kept)
    assert "absent" in info["rule"]


def test_with_timestamps_only_interactions_after_the_cutoff_remain():
    champion_data = _data(seed=1)
    new = _data(seed=2)
    reference = TrainingReference.of(champion_data)
    fair, info = fair_test(new, reference)
    cutoff = pd.Timestamp(champion_data.train_cutoff)
    t = new.test_time.tocoo()
    expected = {(new.user_ids[r], new.item_ids[c]) for r, c, v in zip(t.row, t.col, t.data)
                if pd.Timestamp(v, unit="s") > cutoff}
    assert _pairs(new, fair.test) == expected and "cutoff" in info["rule"]


def test_a_memorising_champion_does_not_win_on_the_fair_test():
    """A champion that memorised its training interactions scores them first. On the new split's
    test set it hits whatever of that set it trained on; on the fair test set its memory gains
    nothing over the same ranking without memory."""
    champion_data = _data(seed=1, with_time=False)
    new = _data(seed=2, with_time=False)
    memory = champion_data.train + champion_data.validation  # what the champion trained on, per user
    # Same user and item order in both preparations (sorted ids), so the memory lines up.
    assert (champion_data.user_ids == new.user_ids).all() and (champion_data.item_ids == new.item_ids).all()

    def memoriser(users):
        return memory[users].toarray()

    def memoryless(users):  # the same ranking without the memory: items in index order
        return np.zeros((len(users), new.n_items))

    def recall(scorer, data):
        return evaluate_scores(scorer, data.known, data.test, ks=(10,)).metrics["recall@10"]

    fair, _ = fair_test(new, TrainingReference.of(champion_data))
    assert recall(memoriser, new) > recall(memoryless, new) + 0.2  # memory pays off on the raw split
    assert recall(memoriser, fair) <= recall(memoryless, fair)  # and not at all on the fair one


def test_reference_round_trip(tmp_path):
    ref = TrainingReference.of(_data(seed=1))
    back = TrainingReference.load(ref.save(tmp_path))
    assert back.cutoff == ref.cutoff and (back.users == ref.users).all() and (back.items == ref.items).all()
