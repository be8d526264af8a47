"""What a served model answers, string ids in and out (the pyfunc wrapper only delegates here)."""

import numpy as np
import pandas as pd
import pytest

from genrec.config import PrepareConfig
from genrec.errors import ServingCheckError, UnloadableModelError
from genrec.models.pop import Popularity
from genrec.preprocessing import prepare
from genrec.serving import BadRequest, ServingModel, check_served, example_request, ranked_from_predictions


@pytest.fixture(scope="module")
def bundle():
    # Item "a" is the most popular, then "b", "c", "d"; user ids and item ids are strings.
    rows = [("7", "a"), ("7", "b"), ("8", "a"), ("8", "c"), ("9", "a"), ("9", "b"), ("10", "d"), ("10", "a")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(rating=np.nan, timestamp=pd.NaT)
    data = prepare(df, PrepareConfig(min_interactions_to_split=99))  # everything in train
    return ServingModel.build(Popularity().fit(data), data, family="pop")


def test_history_in_string_ids_out(bundle):
    out = bundle.predict(pd.DataFrame({"user_id": ["x"], "history": [["a", "no-such-item"]]}), k=2)
    assert out.iloc[0]["user_id"] == "x"
    assert out.iloc[0]["items"] == ["b", "c"]  # "a" is in the history, the unknown item is ignored
    assert all(isinstance(i, str) for i in out.iloc[0]["items"])


def test_known_user_without_history_uses_their_record(bundle):
    out = bundle.predict(pd.DataFrame({"user_id": ["7"], "history": [[]]}), k=3)
    assert out.iloc[0]["items"] == ["c", "d"]  # 7 has a and b; only two items are left


def test_unknown_user_and_empty_history_get_popularity_marked_as_such(bundle):
    out = bundle.predict(pd.DataFrame({"user_id": ["stranger", "7"], "history": [[], []]}), k=3)
    assert out.iloc[0]["items"] == ["a", "b", "c"]
    assert out.iloc[0]["scores"] == [4.0, 2.0, 1.0]
    assert out["fallback"].tolist() == [True, False]
    assert out.iloc[0]["names"] == [None, None, None]  # no item table


def test_answers_carry_each_items_display_name(tmp_path):
    rows = [("7", "a"), ("8", "a"), ("8", "b"), ("9", "c")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(rating=np.nan, timestamp=pd.NaT)
    items = pd.DataFrame({"item_id": ["c", "b", "a"], "description": ["CANDLE ", None, "APRON"], "price": [1, 2, 3]})
    data = prepare(df, PrepareConfig(min_interactions_to_split=99), items=items)
    named = ServingModel.load(ServingModel.build(Popularity().fit(data), data, family="pop").save(tmp_path / "s"))
    out = named.predict(pd.DataFrame({"user_id": ["stranger", "9"]}), k=3)
    assert out.iloc[0]["items"] == ["a", "b", "c"] and out.iloc[0]["names"] == ["APRON", None, "CANDLE"]
    assert out.iloc[1]["items"] == ["a", "b"] and out.iloc[1]["names"] == ["APRON", None]


def test_rows_of_one_request_each_get_their_own_history(bundle):
    # The ids of all rows are looked up together: each row must still get its own items back.
    frame = pd.DataFrame({"user_id": ["x", "7", "y", "z", "8"],
                          "history": [["c", "nope", "b"], [], "d,a", ["nope"], ["d"]]})
    out = bundle.predict(frame, k=2)
    assert out["items"].tolist() == [["a", "d"], ["c", "d"], ["b", "c"], ["a", "b"], ["a", "b"]]
    assert out["fallback"].tolist() == [False, False, False, True, False]


def test_predicted_ids_map_back_to_positions_row_by_row():
    index = pd.Index(["a", "b", "c", "d"])
    predictions = pd.DataFrame({"items": [["d", "a", "b"], [], ["zz", "c"], ["b", "c", "d", "a"]]})
    assert ranked_from_predictions(predictions, index, 3).tolist() == [[3, 0, 1], [-1, -1, -1], [-1, 2, -1],
                                                                       [1, 2, 3]]


@pytest.mark.parametrize("frame, k", [(pd.DataFrame({"other": [1]}), 3), (pd.DataFrame({"user_id": ["7"]}), 0),
                                      (pd.DataFrame({"user_id": ["7"], "history": [5]}), 3)])
def test_bad_requests(bundle, frame, k):
    with pytest.raises(BadRequest):
        bundle.predict(frame, k=k)


class Served:
    """The two things of a loaded pyfunc model that the check uses."""

    def __init__(self, bundle, broken=False):
        self.bundle, self.broken = bundle, broken
        self.input_example = example_request(bundle)

    def predict(self, frame, params):
        out = self.bundle.predict(frame, k=params["k"])
        return out.drop(columns="scores") if self.broken else out


def test_infrastructure_check(bundle):
    check_served(Served(bundle))
    with pytest.raises(ServingCheckError, match="columns"):
        check_served(Served(bundle, broken=True))


def test_saved_as_data_and_loaded_back(bundle, tmp_path):
    folder = bundle.save(tmp_path / "served")
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        "model.json", "serving.json", "serving.safetensors", "weights.safetensors"]
    loaded = ServingModel.load(folder)
    frame = pd.DataFrame({"user_id": ["7", "x"], "history": [[], ["b"]]})
    pd.testing.assert_frame_equal(loaded.predict(frame, k=3), bundle.predict(frame, k=3))
    assert loaded.data_fingerprint == bundle.data_fingerprint


def test_a_folder_that_is_no_serving_model_is_refused(tmp_path):
    with pytest.raises(UnloadableModelError, match="no serving.json"):
        ServingModel.load(tmp_path)


def test_batch_scoring_reports_its_progress(bundle, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from genrec import batch

    monkeypatch.setattr(batch, "PROGRESS_SECONDS", 0.0)  # a report after every chunk
    calls = []
    result = batch.write_recommendations(bundle, tmp_path / "recs.parquet", 3, {}, chunk=3,
                                         progress=lambda *done: calls.append(done))
    assert result["users"] == 4 == pq.read_table(tmp_path / "recs.parquet").num_rows
    assert calls == [(3, 4), (4, 4)]
