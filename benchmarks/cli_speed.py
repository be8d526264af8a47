"""How long the commands that only read the registry take, end to end as a user types them.

    python benchmarks/cli_speed.py [--versions 50] [--repeats 5]

A scratch GENREC_HOME gets a registered model with --versions versions (genrec's tags on each) and a
champion; each command runs --repeats times as a new process; the median and the slowest are printed.
SPEC: commands that only read the registry answer within 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (["models"], ["models", "--json"], ["history"], ["promote", "--help"], ["rollback", "--help"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="genrec-cli-speed-"))
    os.environ["GENREC_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from genrec import registry

    c = registry.client()
    c.create_registered_model("genrec")
    for i in range(args.versions):
        v = c.create_model_version("genrec", source="file:///nonexistent/model")
        registry.set_version_tags("genrec", v.version, {"metrics": {"ndcg@20": 0.1}, "decision": {"promote": True},
                                                        "data_fingerprint": f"fp{i}"})
        if i % 10 == 0:
            registry.move_champion("genrec", v.version, reason="benchmark", actor="benchmark")
    genrec = str(Path(sys.executable).parent / "genrec")
    print(f"{args.versions} versions, local SQLite store; {args.repeats} runs each (a new process every time)")
    print(f"{'command':<24} {'median s':>9} {'slowest s':>10}")
    for command in COMMANDS:
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run([genrec, *command], capture_output=True, text=True)
            seconds.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"genrec {' '.join(command)} failed: {done.stderr}")
        print(f"{'genrec ' + ' '.join(command):<24} {statistics.median(seconds):>9.2f} {max(seconds):>10.2f}")


if __name__ == "__main__":
    main()
