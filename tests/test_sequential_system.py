"""The sequence family through the whole system on a log where order is the only signal (a cyclic
catalogue: after item k comes k + 1): the training flow under the Prefect harness with
leave-last-out, `genrec recommend --history`, a history served in order over real HTTP, and
`genrec evaluate --train/--test` scoring exactly the leave-last-out protocol."""

import json
import urllib.request

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import home_env, serving
from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")

N_ITEMS = 12
SEQGAN = ["model.name=seqgan", "model.dim=32", "model.layers=1", "train.epochs=40", "train.patience=10",
          "prepare.min_user_interactions=3"]
"""Small enough to train in seconds; the same settings for the flow and for `genrec evaluate`."""


def cyclic_log(n_users: int = 120, seed: int = 0) -> pd.DataFrame:
    """Each user took 4 to 9 consecutive items k, k + 1, ... of a circle of N_ITEMS, in that order,
    one a day; the rows are shuffled, so only the timestamps carry the order."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(4, 10))
        rows += [(f"u{u}", f"i{(start + j) % N_ITEMS}", 1.0, 1_600_000_000 + 86_400 * (u + j)) for j in range(length)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _next(item: str, step: int = 1) -> str:
    return f"i{(int(item[1:]) + step) % N_ITEMS}"


def _cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def trained(prefect_harness, tmp_path_factory):
    """One seqgan champion trained by the flow on the cyclic log."""
    tmp_path = tmp_path_factory.mktemp("seq")
    home, log = tmp_path / "home", tmp_path / "cyclic.csv"
    cyclic_log().to_csv(log, index=False)
    with home_env(home):
        from flows.training import train_flow

        result = train_flow(data=str(log), format="csv", config="tiny",
                            overrides=[*SEQGAN, "prepare.split=leave-last-out"])
        yield home, log, result


def test_the_flow_trains_gates_and_registers_the_sequence_family(trained):
    _, _, result = trained
    assert result["status"] == "promoted", result["decision"]
    # Each user's last item is the test item; only order tells it, and the family finds it.
    assert result["metrics"]["ndcg@5"] >= 0.9, result["metrics"]
    assert result["baseline_metrics"]["ndcg@5"] < 0.5
    # Both stages' epochs are one curve in the MLflow run, the adversarial one's with its discriminator's loss.
    from genrec import registry

    client = registry.client()
    curve = [m.step for m in client.get_metric_history(result["mlflow_run_id"], "val_ndcg_at_20")]
    adversarial = [m.step for m in client.get_metric_history(result["mlflow_run_id"], "d_loss")]
    assert sorted(curve) == list(range(1, len(curve) + 1)) and adversarial == curve[-len(adversarial):]
    assert client.get_run(result["mlflow_run_id"]).data.params["chosen.adversarial_epochs"].isdigit()


@pytest.mark.usefixtures("trained")
@pytest.mark.parametrize("history", [["i3", "i4", "i5"], ["i10", "i11", "i0"], ["i2", "i7"], ["i7", "i2"]])
def test_recommend_a_history_in_order(history):
    out = json.loads(_cli("recommend", "--history", ",".join(history), "-k", "1", "--json"))
    assert out["items"] == [_next(history[-1])], out  # the last item decides: the same items in another order differ


def test_a_history_served_over_http_is_read_in_order(trained, tmp_path):
    home, _, _ = trained
    with serving(home, tmp_path / "serve.log") as base:
        records = [{"user_id": "new-1", "history": ["i1", "i2", "i3"]},
                   {"user_id": "new-2", "history": ["i2", "i8"]},
                   {"user_id": "new-3", "history": ["i8", "i2"]},  # the same items the other way round
                   {"user_id": "new-4", "history": ["i11"]}]
        body = json.dumps({"dataframe_records": records, "params": {"k": 1}}).encode()
        request = urllib.request.Request(f"{base}/invocations", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
        assert [p["items"] for p in predictions] == [["i4"], ["i9"], ["i3"], ["i0"]], predictions


def test_evaluate_given_files_scores_the_leave_last_out_protocol(tmp_path):
    from genrec import pipeline
    from genrec.config import load_config

    log = cyclic_log().sort_values("timestamp", kind="stable")
    last = log.groupby("user_id").tail(1)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    log.drop(last.index).sample(frac=1.0, random_state=1).to_csv(train, index=False)  # file order is not time order
    last.to_csv(test, index=False)

    # Validation is each user's last training item by time, because the family reads order.
    data = pipeline.load_split(train, test, "csv", load_config("tiny", SEQGAN))
    validation = data.validation.tocsr()
    for u, user in enumerate(data.user_ids):
        before = log[(log.user_id == user) & ~log.index.isin(last.index)]
        assert data.item_ids[validation[u].indices].tolist() == [before.item_id.iloc[-1]]

    settings = [a for kv in SEQGAN[1:] for a in ("--set", kv)]
    out = json.loads(_cli("evaluate", "--train", str(train), "--test", str(test), "--format", "csv", "--model",
                          "seqgan", "--config", "tiny", *settings, "--json"))
    assert out["users"] == log.user_id.nunique() and out["metrics"]["ndcg@5"] >= 0.9, out


def test_batch_scores_each_known_user_after_their_last_item(trained, tmp_path):
    import pyarrow.parquet as pq

    _, log, _ = trained
    path = tmp_path / "recs.parquet"
    _cli("batch", "--output", str(path), "-k", "1")
    frame = pq.read_table(path).to_pandas()
    last = pd.read_csv(log).sort_values("timestamp", kind="stable").groupby("user_id").item_id.last()
    assert len(frame) == len(last)
    assert {u: items[0] for u, items in zip(frame.user_id, frame["items"])} == {u: _next(i) for u, i in last.items()}
