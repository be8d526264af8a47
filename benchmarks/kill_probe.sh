#!/usr/bin/env bash
# SIGKILL `genrec run` mid-training N times on one fresh GENREC_HOME, then run once more: prints how
# many Prefect servers each kill left running and, after the last run, the MLflow runs by status.
#   bash benchmarks/kill_probe.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/genrec
N=${1:-5}
export GENREC_HOME=$(mktemp -d)/home
unset MLFLOW_TRACKING_URI PREFECT_API_URL PREFECT_HOME
logs=$(mktemp -d)
for i in $(seq 1 "$N"); do
  $G run --config tiny --set train.epochs=400 --set train.patience=400 --set train.log_every=1 > "$logs/$i.log" 2>&1 &
  pid=$!
  for t in $(seq 1 120); do grep -q "epoch" "$logs/$i.log" && break; sleep 1; done
  sleep $((3 + i)); kill -9 $pid; wait $pid 2>/dev/null; sleep 4
  echo "kill $i (first epoch line after ${t} s): Prefect servers still running: $(pgrep -f 'prefect.server|uvicorn.*prefect' | wc -l)"
done
$G run --config tiny > "$logs/next.log" 2>&1; echo "the next run: exit $?"
.venv/bin/python - <<PY
from collections import Counter
import mlflow
c = mlflow.MlflowClient("sqlite:///$GENREC_HOME/mlflow.db")
runs = c.search_runs([e.experiment_id for e in c.search_experiments()])
print("MLflow runs by status:", dict(Counter(r.info.status for r in runs)))
PY
grep -h "KILLED\|CRASHED" "$logs/next.log" | sed 's/^.*| //' | sort -u
