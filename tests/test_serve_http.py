"""`genrec serve`: the champion behind genrec's HTTP server, answering real HTTP requests within the
limits of `serving.*`."""

import json
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def server(prefect_harness, tmp_path_factory):
    """One served champion for the tests of this module (in file order: the last one moves champion)."""
    from conftest import clustered_interactions, home_env, serving

    tmp_path = tmp_path_factory.mktemp("serve")
    genrec_home, clustered_csv = tmp_path / "home", tmp_path / "clustered.csv"
    clustered_interactions().to_csv(clustered_csv, index=False)
    with home_env(genrec_home):
        result = CliRunner().invoke(app, ["run", "--data", str(clustered_csv), "--format", "csv", "--config", "tiny",
                                          "--set", "model.name=ease"])
        assert result.exit_code == 0, result.stderr
        limits = ["--set", "serving.max_records=50", "--set", "serving.max_history=20", "--set", "serving.max_k=30",
                  "--set", "serving.max_body_bytes=20000", "--set", "serving.batch_rows=7",
                  "--set", "serving.reload_seconds=1", "--set", "serving.log_requests=true"]
        log = tmp_path / "serve.log"
        with serving(genrec_home, log, *limits) as base:
            yield SimpleNamespace(url=base, log=log, data=clustered_csv)


def test_served_champion_answers_and_survives_bad_requests(server):
    url = f"{server.url}/invocations"
    body = {"dataframe_records": [{"user_id": "u1-0", "history": ["i1-0", "i1-1", "i1-2", "not-an-item"]},
                                  {"user_id": "stranger", "history": []}], "params": {"k": 4}}
    status, answer = _post(url, json.dumps(body).encode())
    assert status == 200, answer
    known, stranger = answer["predictions"]
    assert known["user_id"] == "u1-0" and len(known["items"]) == 4 == len(known["scores"])
    assert not {"i1-0", "i1-1", "i1-2"} & set(known["items"])
    assert sum(i.startswith("i1-") for i in known["items"]) >= 3  # the cluster its history points to
    assert known["fallback"] is False and stranger["fallback"] is True  # the popularity fallback, marked
    assert stranger["user_id"] == "stranger" and len(stranger["items"]) == 4
    assert known["names"] == [None] * 4  # this CSV has no item table
    assert stranger["scores"] == sorted(stranger["scores"], reverse=True)

    for bad in (b'{"dataframe_records": [{"user_id": "u1-0", "history": 5}]}', b"{not json",
                b'{"nonsense": 1}', b'{"dataframe_records": [{"user_id": "u1-0"}], "params": {"k": 0}}'):
        status, _ = _post(url, bad)
        assert 400 <= status < 500, bad
    with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as response:
        assert response.status == 200  # still up
    status, _ = _post(url, json.dumps(body).encode())
    assert status == 200


def _one_line(answer: dict) -> str:
    assert set(answer) == {"error_code", "message"}, answer
    message = answer["message"]
    assert "\n" not in message and "Traceback" not in message and "/" not in message, message
    return message


def test_served_champion_keeps_its_limits(server):
    url = f"{server.url}/invocations"

    def records(n: int, history: list) -> bytes:
        return json.dumps({"dataframe_records": [{"user_id": f"u{i % 4}-{i % 30}", "history": history}
                                                 for i in range(n)], "params": {"k": 5}}).encode()

    # Over a limit: 413 with the limit named; the request is not echoed.
    status, answer = _post(url, records(51, []))
    assert status == 413 and "51 records" in _one_line(answer) and "50" in answer["message"]
    status, answer = _post(url, records(1, [f"i0-{j}" for j in range(21)]))
    assert status == 413 and "21 items" in _one_line(answer)
    status, answer = _post(url, b'{"dataframe_records": [], "pad": "' + b"x" * 20_001 + b'"}')
    assert status == 413 and "20000" in _one_line(answer)

    # Wrong types and k out of range: 400, naming the field.
    for bad, field in (({"dataframe_records": [{"user_id": {"secret-value": 1}}]}, "user_id"),
                       ({"dataframe_records": [{"user_id": True}]}, "user_id"),
                       ({"dataframe_records": [{"history": ["i0-1", [2]]}]}, "history item 1"),
                       ({"dataframe_records": [{"user_id": "u0-0"}], "params": {"k": 31}}, "between 1 and 30"),
                       ({"dataframe_records": [{"user_id": "u0-0"}], "params": {"k": "5"}}, "params.k"),
                       ({"dataframe_records": [{}]}, "user_id or a history")):
        status, answer = _post(url, json.dumps(bad).encode())
        assert status == 400 and field in _one_line(answer), (bad, answer)
        assert "secret-value" not in answer["message"]
    status, answer = _post(url, b"customer\n12", "text/csv")
    assert status == 400 and "user_id or a history column" in _one_line(answer)
    status, answer = _post(url, b"user_id,history\nu1-0,\"i1-0,i1-1\"\n", "text/csv")
    as_json = _post(url, json.dumps({"dataframe_records": [{"user_id": "u1-0", "history": ["i1-0", "i1-1"]}]}).encode())
    assert status == 200 and answer["predictions"] == as_json[1]["predictions"]  # CSV: the same answer, k 10

    # Numbers are ids as well as strings; the limits do not change answers: 50 records scored 7 at a
    # time answer as each does alone.
    status, answer = _post(url, json.dumps({"dataframe_split": {"columns": ["history"], "data": [[[1, 2.0]]]},
                                            "params": {"k": 3}}).encode())
    assert status == 200 and len(answer["predictions"][0]["items"]) == 3
    status, many = _post(url, records(50, ["i1-0", "i1-1"]))
    assert status == 200 and len(many["predictions"]) == 50
    status, one = _post(url, records(1, ["i1-0", "i1-1"]))
    assert many["predictions"][49]["items"] == many["predictions"][0]["items"] == one["predictions"][0]["items"]

    with urllib.request.urlopen(f"{server.url}/version", timeout=5) as response:
        about = json.loads(response.read())
    assert {k: about[k] for k in ("model_name", "version", "alias", "model_family")} == {
        "model_name": "genrec", "version": "1", "alias": "champion", "model_family": "ease"}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _metrics(server) -> dict[str, float]:
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in _get(f"{server.url}/metrics").splitlines()
            if line and not line.startswith("#")}


def _logged(server) -> list[dict]:
    return [json.loads(line[line.index("{"):]) for line in server.log.read_text().splitlines() if '"status"' in line]


def test_served_champion_follows_promotions_counts_and_logs(server):
    """Last in this module: it moves champion."""
    before, logged_before = _metrics(server), len(_logged(server))
    body = json.dumps({"dataframe_records": [{"user_id": "u1-0"}], "params": {"k": 3}}).encode()
    assert _post(f"{server.url}/invocations", body)[0] == 200
    assert _post(f"{server.url}/invocations", b"{not json")[0] == 400
    # A second version, registered but not promoted (it is no better than the champion), then promoted by hand.
    result = CliRunner().invoke(app, ["run", "--data", str(server.data), "--format", "csv", "--config", "tiny",
                                      "--set", "model.name=ease", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "not_promoted"
    assert json.loads(_get(f"{server.url}/version"))["version"] == "1"
    result = CliRunner().invoke(app, ["promote", "2", "--reason", "test"])
    assert result.exit_code == 0, result.stderr
    deadline = time.time() + 60
    while json.loads(_get(f"{server.url}/version"))["version"] != "2" and time.time() < deadline:
        time.sleep(0.5)
    assert json.loads(_get(f"{server.url}/version"))["version"] == "2"
    assert _post(f"{server.url}/invocations", body)[0] == 200

    after = _metrics(server)
    grew = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert grew['genrec_requests_total{status="200"}'] == 2 and grew['genrec_requests_total{status="400"}'] == 1
    assert grew["genrec_records_total"] == 2 and grew["genrec_request_seconds_count"] == 3
    assert after["genrec_model_version"] == 2 and after["genrec_reloads"] == 1

    logged = _logged(server)[logged_before:]
    assert [(e["status"], e["version"]) for e in logged] == [(200, "1"), (400, "1"), (200, "2")]
    assert logged[0]["records"] == [{"user_id": "u1-0", "history": []}] and len(logged[0]["predictions"][0]["items"]) == 3
    assert "now serving version 2" in server.log.read_text()
