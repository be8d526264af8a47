"""Shop scale: the real training flow on seeded synthetic shop logs of sizes S, M and L, with
seconds and peak memory per stage, NDCG@20 next to popularity and the scalable item-item model
trained in the same run; and the seconds of one generator epoch against the interactions, with the
fitted exponent of the power law.

    python benchmarks/scale.py [--sizes S,M] [--epochs-only] [--workdir DIR] [--set KEY=VALUE ...]

`--sizes` also takes USERSxITEMSxINTERACTIONS, e.g. 50000x100000x1000000 for a 100K-item
catalogue on fewer users (then `benchmarks/serving.py` with GENREC_HOME=DIR/home-SIZE times its
served champion).

Sizes (genrec/synthetic.py): S 20K users x 5K items x 0.5M interactions, M 200K x 30K x 4M,
L 1M x 100K x 20M. Each log is written once as CSV under --workdir and trained on by
`genrec run --data LOG.csv --json` in a process of its own (a fresh GENREC_HOME per size); its
peak memory is that process's. `--epochs-only` skips the runs and times the first epoch (its
validation included) of the default generator on each size's training split, alone (`--set
model.name=seqgan --set model.adversarial=false` for the sequence family's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shape(size: str):
    """A named size, or USERSxITEMSxINTERACTIONS (e.g. 50000x100000x1000000)."""
    from genrec.synthetic import SIZES, ShopShape

    if size in SIZES:
        return ShopShape(*SIZES[size])
    try:
        users, items, interactions = (int(n) for n in size.split("x"))
    except ValueError:
        raise SystemExit(f"--sizes takes {', '.join(SIZES)} or USERSxITEMSxINTERACTIONS, got {size!r}") from None
    return ShopShape(users, items, interactions)


def log_file(size: str, workdir: Path) -> Path:
    from genrec.synthetic import write_shop_log

    path = workdir / f"shop-{size}.csv"
    if not path.is_file():
        start = time.perf_counter()
        rows = write_shop_log(shape(size), path.with_suffix(".tmp"), seed=0)
        path.with_suffix(".tmp").rename(path)
        print(f"{size}: wrote {rows:,} rows to {path} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def run_flow(size: str, path: Path, workdir: Path, overrides: list[str]) -> dict:
    home = workdir / f"home-{size}"
    env = dict(os.environ, GENREC_HOME=str(home), PREFECT_HOME=str(home / "prefect"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    command = [str(Path(sys.executable).with_name("genrec")), "run", "--data", str(path), "--json",
               *[a for o in overrides for a in ("--set", o)]]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far, MB
    (workdir / f"run-{size}.log").write_text(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{size}: genrec run failed ({done.returncode}); its log: {workdir / f'run-{size}.log'}")
    result = json.loads(done.stdout)
    result["wall_seconds"], result["peak_mb"] = seconds, peak
    return result


def report(size: str, result: dict) -> None:
    stats = result["dataset"]
    print(f"\n{size}: {stats['users']:,} users x {stats['items']:,} items, {stats['interactions']:,} interactions; "
          f"{result['wall_seconds']:.0f} s end to end (process start to exit), peak {result['peak_mb']:,.0f} MB")
    print(f"  {'stage':<10} {'seconds':>8} {'peak MB so far':>15}")
    for stage in result["stages"]:
        print(f"  {stage['stage']:<10} {stage['seconds']:>8.1f} {stage['peak_rss_mb']:>15,}")
    rows = [("model (" + result["decision"]["metric"] + ")", result["test_metrics"]),
            *[(f"  {name} alone", m) for name, m in result["component_metrics"].items()],
            ("popularity", result["baseline_metrics"])]
    for name, metrics in rows:
        print(f"  {name:<28} ndcg@20 {metrics['ndcg@20']:.4f}  recall@20 {metrics['recall@20']:.4f}")
    print(f"  gate: {result['status']}; {result['decision']['reasons'][0]}")


def epoch_seconds(sizes: list[str], overrides: list[str]) -> None:
    import numpy as np
    import pandas as pd

    from genrec import preprocessing
    from genrec.config import load_config
    from genrec.models.families import make_model
    from genrec.synthetic import shop_log

    points = []
    for size in sizes:
        log = shop_log(shape(size), seed=0)
        log["timestamp"] = pd.to_datetime(log["timestamp"], unit="s")
        log["rating"] = np.nan
        cfg = load_config("default", ["model.blend=none", *overrides, "train.epochs=1"])
        data = preprocessing.prepare(preprocessing.to_implicit(log, cfg.data, cfg.prepare), cfg.prepare)
        data.validation_users = cfg.eval.validation_users  # as the flow validates (pipeline.prepare)
        model = make_model(cfg).fit(data)
        record = model.training_.history[0]
        points.append((data.train.nnz, record["seconds"]))
        print(f"{size}: {data.train.nnz:,} training interactions ({data.n_users:,} x {data.n_items:,}), "
              f"{cfg.model.name}: {record['seconds']:.1f} s for its first epoch (validation NDCG@20 "
              f"{record['val_ndcg@20']:.4f} included)", flush=True)
    if len(points) > 1:
        x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
        slope = np.polyfit(x, y, 1)[0]
        print(f"seconds per epoch ~ interactions^{slope:.2f} (least squares on the log-log points)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,M")
    parser.add_argument("--epochs-only", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    print(f"{os.cpu_count()} cores; sizes {', '.join(sizes)}; overrides {args.overrides or 'none'}", flush=True)
    if args.epochs_only:
        epoch_seconds(sizes, args.overrides)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genrec-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        report(size, run_flow(size, log_file(size, workdir), workdir, args.overrides))


if __name__ == "__main__":
    main()
