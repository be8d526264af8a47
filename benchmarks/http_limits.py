"""`genrec serve` under big and hostile requests: status, seconds and the server's memory (RSS and
peak, from /proc) for each. Trains `tiny` on the bundled sample in a fresh GENREC_HOME first.

    .venv/bin/python benchmarks/http_limits.py
    .venv/bin/python benchmarks/http_limits.py --set serving.max_records=20000   # the limit raised
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from served import GENREC, genrec_serve

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="serving.* for genrec serve")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp()) / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME")}
    env["GENREC_HOME"] = str(home)
    subprocess.run([GENREC, "run", "--config", "tiny"], env=env, check=True, capture_output=True)
    subprocess.run([GENREC, "promote", "1", "--reason", "probe"], env=env, check=True, capture_output=True)
    sets = [x for o in args.overrides for x in ("--set", o)]
    with genrec_serve(env, sets, stderr=(home.parent / "serve.log").open("w")) as (server, base):
        probe(server, base, home)


def probe(server: subprocess.Popen, base: str, home: Path) -> None:
    """Each request, its status and seconds, and the server's memory after it."""

    def memory() -> str:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{server.pid}/status").read_text().splitlines())
        gb = {k: int(status[k].split()[0]) / 1e6 for k in ("VmRSS", "VmHWM")}
        return f"RSS {gb['VmRSS']:.2f} GB, peak {gb['VmHWM']:.2f} GB"

    def post(name: str, body: bytes, content_type: str = "application/json") -> None:
        request = urllib.request.Request(f"{base}/invocations", data=body, headers={"Content-Type": content_type})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        except OSError as exc:  # the server answered early and closed while the body was still going
            status, answer = "closed", str(exc).encode()
        print(f"{name}: {status} in {time.perf_counter() - start:.2f} s; {memory()}; {answer[:120]!r}", flush=True)

    sample = pd.read_csv(ROOT / "genrec" / "sample" / "online_retail_sample.csv.gz", dtype=str)
    users = [str(int(float(u))) for u in sample["CustomerID"].dropna().unique()]
    print(f"serving version 1; at rest: {memory()}")
    for n in (20_000, 1_000):
        records = [{"user_id": users[i % len(users)], "history": []} for i in range(n)]
        body = json.dumps({"dataframe_records": records, "params": {"k": 10}}).encode()
        post(f"{n} records ({len(body) / 1e6:.2f} MB)", body)
    big = home.parent / "big.json"
    big.write_bytes(b'{"dataframe_records": [], "x": "' + b"y" * 35_000_000 + b'"}')
    start = time.perf_counter()
    curl = subprocess.run(["curl", "-s", "-w", " HTTP %{http_code}", "-H", "Content-Type: application/json",
                           "--data-binary", f"@{big}", f"{base}/invocations"], capture_output=True, text=True)
    print(f"35 MB body (curl): {curl.stdout[-140:]} in {time.perf_counter() - start:.2f} s; {memory()}")
    post("a user_id that is an object", json.dumps({"dataframe_records": [{"user_id": {"a": 1}}]}).encode())
    post("CSV without a user_id or history column", b"customer\n12", "text/csv")
    post("k = 0", json.dumps({"dataframe_records": [{"user_id": users[0]}], "params": {"k": 0}}).encode())


if __name__ == "__main__":
    main()
