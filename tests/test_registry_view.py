"""The registry read without MLflow's client (`genrec models`, `genrec history`) says what MLflow's
client says, and hands over to it wherever a read alone cannot answer."""

import json
import subprocess
import sys

from genrec import registry, registry_view


def _versions(n: int) -> None:
    c = registry.client()
    c.create_registered_model("genrec")
    for i in range(n):
        v = c.create_model_version("genrec", source="file:///nonexistent/model", run_id=None)
        registry.set_version_tags("genrec", v.version, {
            "metrics": {"ndcg@20": round(0.1 + i / 100, 4)}, "decision": {"promote": i % 2 == 0, "reasons": ["r"]},
            "data_fingerprint": f"fp{i}", "model_family": "cfgan", "flow_run_id": f"flow-{i}"})


def test_view_agrees_with_mlflow_on_the_local_store(genrec_home):
    assert registry_view.list_versions("genrec") is None  # no store yet: the client creates it
    registry.client().search_experiments(max_results=1)
    assert registry_view.list_versions("genrec") == [] and registry_view.history("genrec") == []
    _versions(3)
    registry.move_champion("genrec", "1", reason="first", actor="test")
    registry.move_champion("genrec", "3", reason="second", actor="test")
    registry.client().set_registered_model_alias("genrec", registry.CHALLENGER, "2")
    registry.client().delete_model_version("genrec", "2")
    viewed = registry_view.list_versions("genrec")
    assert viewed == registry.list_versions("genrec")
    assert [v["version"] for v in viewed] == ["3", "1"] and viewed[0]["aliases"] == ["champion"]
    assert viewed[0]["metrics"] == {"ndcg@20": 0.12} and viewed[1]["data_fingerprint"] == "fp0"
    assert registry_view.history("genrec") == registry.history("genrec")
    assert [e["to_version"] for e in registry_view.history("genrec")] == ["1", "3"]


def test_view_hands_over_where_a_read_cannot_answer(genrec_home):
    _versions(2)
    c = registry.client()
    c.set_registered_model_tag("genrec", registry.INTENT, json.dumps(
        {"key": "genrec.history.000001", "from_version": None, "to_version": "1", "reason": "cut short",
         "actor": "test", "time": "2026-01-01T00:00:00+00:00", "alias": "champion"}))
    assert registry_view.history("genrec") is None  # a move cut short: the client repairs it first
    registry.set_version_tags("genrec", "2", {"promotion": {"status": "pending"}})
    assert registry_view.list_versions("genrec") is None  # its run may have died: the client looks


PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("imported mlflow: %s\\n" % ("mlflow" in sys.modules)))
from genrec.cli import main
main()
"""


def test_reading_commands_do_not_import_mlflow(genrec_home):
    """`genrec models` and `history` answer from the view alone (benchmarks/cli_speed.py times them)."""
    _versions(20)
    registry.move_champion("genrec", "20", reason="r", actor="test")
    for command in (["models", "--json"], ["history", "--json"]):
        done = subprocess.run([sys.executable, "-c", PROBE, *command], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "imported mlflow: False" in done.stderr
    assert json.loads(done.stdout)["events"][0]["to_version"] == "20"
