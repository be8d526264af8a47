"""Latency of single-user requests against the served champion, and batch throughput.

    GENREC_HOME=... .venv/bin/python benchmarks/serving.py [--requests 500] [--no-batch]

Needs a champion in GENREC_HOME (e.g. after `genrec run --data ../shared/data/ml-100k/u.data`).
Starts `genrec serve` on a free loopback port, sends --requests single-user requests one after
another (known users, each with their own recorded history), prints p50/p90/p99 latency, stops the
server, then prints the same for the same requests answered in process (`ServingModel.predict`:
the model's share of a request's time, without HTTP and JSON) and times the batch scoring of every
known user in process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from genrec import registry
from genrec.batch import write_recommendations
from genrec.config import load_config
from served import genrec_serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--no-batch", action="store_true", help="time the single-user requests only")
    args = parser.parse_args()
    name = load_config().registry.model_name
    version = registry.champion_version(name)
    if version is None:
        sys.exit("no champion in GENREC_HOME: run `genrec run` first")
    served = registry.load_serving_model(registry.version_uri(name, version))
    print(f"{name} version {version} ({served.model_family}): {len(served.user_ids)} users, "
          f"{len(served.item_ids)} items")

    with genrec_serve(dict(os.environ), []) as (_, base):
        latencies = []
        users = served.user_ids
        for i in range(args.requests):
            user = str(users[i % len(users)])
            body = json.dumps({"dataframe_records": [{"user_id": user, "history": []}], "params": {"k": args.k}})
            request = urllib.request.Request(f"{base}/invocations", data=body.encode(),
                                             headers={"Content-Type": "application/json"})
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            latencies.append((time.perf_counter() - start) * 1000)
        print(f"single-user requests: {quantiles(latencies)}")

    latencies = []
    for i in range(-10, args.requests):  # ten unmeasured first: the first calls allocate
        frame = pd.DataFrame({"user_id": [str(users[i % len(users)])], "history": [[]]})
        start = time.perf_counter()
        served.predict(frame, k=args.k)
        if i >= 0:
            latencies.append((time.perf_counter() - start) * 1000)
    print(f"the same in process: {quantiles(latencies)}")

    if args.no_batch:
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = write_recommendations(served, Path(tmp) / "recs.parquet", args.k, {"model_version": version})
    print(f"batch: {result['users']} users' top-{args.k} in {result['seconds']} s "
          f"({result['users_per_second']} users/s)")


def quantiles(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{len(latencies)}, p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms"


if __name__ == "__main__":
    main()
