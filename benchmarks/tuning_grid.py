"""Seconds to fit a tuning grid one candidate at a time, on Prefect's thread pool, and on a local
Dask cluster (prefect-dask), with the choice each makes, on a seeded synthetic log.

    GENREC_HOME=/tmp/scratch python benchmarks/tuning_grid.py [--grid "model.hidden_g=50|200,train.seed=0|1"]
        [--config tiny] [--workers 2] [--users 2000] [--items 1000]

Each runner fits the same candidates (the grid's product) through the flow's own subflow
(flows/tuning.py); the same choice and the same validation scores are expected from all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="model.hidden_g=50|200,train.seed=0|1")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("GENREC_HOME", tempfile.mkdtemp(prefix="genrec-grid-"))
    from conftest import clustered_interactions
    from prefect.testing.utilities import prefect_test_harness

    from flows.tuning import run_grid
    from genrec import pipeline
    from genrec.config import load_config
    from genrec.validation import DataValidator

    clusters = 10
    frame = clustered_interactions(n_clusters=clusters, users_per_cluster=args.users // clusters,
                                   items_per_cluster=args.items // clusters, density=0.05, seed=0)
    path = Path(os.environ["GENREC_HOME"]) / "grid-log.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    base = [f"tune.grid={args.grid}"]
    cfg = load_config(args.config, base)
    data = pipeline.prepare(pipeline.validate(path, cfg, DataValidator(path.parent / "docs")), cfg)
    print(f"{len(cfg.tune.candidates())} candidates ({args.grid}) of --config {args.config} on {data.n_users} users x "
          f"{data.n_items} items, {data.train.nnz} training interactions; {os.cpu_count()} cores")
    with prefect_test_harness(server_startup_timeout=90):
        for runner, workers in (("threads", 1), ("threads", args.workers), ("dask", args.workers)):
            overrides = [*base, f"tune.task_runner={runner}", f"tune.workers={workers}"]
            tuned_cfg = load_config(args.config, overrides)
            start = time.perf_counter()
            result = run_grid(data, pipeline.grid_configs(args.config, overrides, tuned_cfg), tuned_cfg.tune)
            seconds = time.perf_counter() - start
            scores = [c["validation_ndcg@20"] for c in result["candidates"]]
            print(f"{runner:>7} x {workers}: {seconds:6.1f} s; chose {result['candidates'][result['chosen']]['overrides']!r}"
                  f"; validation ndcg@20 {scores}")


if __name__ == "__main__":
    main()
