"""`genrec serve`: the champion behind MLflow's scoring server, answering real HTTP requests."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def server(genrec_home, clustered_csv):
    # EASE: deterministic and exact on clustered data, so the answers below are known; the serving
    # path (bundle, pyfunc, scoring server) is the same for every model family.
    result = CliRunner().invoke(app, ["run", "--data", str(clustered_csv), "--format", "csv", "--config", "tiny",
                                      "--set", "model.name=ease"])
    assert result.exit_code == 0, result.stderr
    port = _free_port()
    genrec = Path(sys.executable).parent / "genrec"
    proc = subprocess.Popen([str(genrec), "serve", "--port", str(port)], env=dict(os.environ, GENREC_HOME=str(genrec_home)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/ping", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read()}")
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("server did not answer /ping within 120 s")
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def test_served_champion_answers_and_survives_bad_requests(server):
    url = f"{server}/invocations"
    body = {"dataframe_records": [{"user_id": "u1-0", "history": ["i1-0", "i1-1", "i1-2", "not-an-item"]},
                                  {"user_id": "stranger", "history": []}], "params": {"k": 4}}
    status, answer = _post(url, json.dumps(body).encode())
    assert status == 200, answer
    known, stranger = answer["predictions"]
    assert known["user_id"] == "u1-0" and len(known["items"]) == 4 == len(known["scores"])
    assert not {"i1-0", "i1-1", "i1-2"} & set(known["items"])
    assert sum(i.startswith("i1-") for i in known["items"]) >= 3  # the cluster its history points to
    assert stranger["user_id"] == "stranger" and len(stranger["items"]) == 4  # popularity fallback
    assert stranger["scores"] == sorted(stranger["scores"], reverse=True)

    for bad in (b'{"dataframe_records": [{"user_id": "u1-0", "history": 5}]}', b"{not json",
                b'{"nonsense": 1}', b'{"dataframe_records": [{"user_id": "u1-0"}], "params": {"k": 0}}'):
        status, _ = _post(url, bad)
        assert 400 <= status < 500, bad
    with urllib.request.urlopen(f"{server}/ping", timeout=5) as response:
        assert response.status == 200  # still up
    status, _ = _post(url, json.dumps(body).encode())
    assert status == 200
