"""Promotions from several processes at once never leave the alias and its history disagreeing."""

import os
import subprocess
import sys
import textwrap

import pytest

from genrec import registry

MOVES = 12


def _two_versions():
    c = registry.client()
    c.create_registered_model("genrec")
    for _ in range(2):
        c.create_model_version("genrec", source="file:///nonexistent/model")


def test_concurrent_promotions_keep_alias_and_history_in_step(genrec_home):
    _two_versions()
    registry.move_champion("genrec", "1", reason="start", actor="test")
    worker = textwrap.dedent(f"""
        import sys
        from genrec import registry
        me = sys.argv[1]
        for i in range({MOVES}):
            registry.move_champion("genrec", me, reason=f"worker {{me}} move {{i}}", actor=f"worker {{me}}")
    """)
    env = dict(os.environ, GENREC_HOME=str(genrec_home))
    procs = [subprocess.Popen([sys.executable, "-c", worker, v], env=env, stderr=subprocess.PIPE, text=True)
             for v in ("1", "2")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    events = registry.history("genrec")
    assert len(events) == 1 + 2 * MOVES  # no move lost
    for before, after in zip(events, events[1:]):
        assert after["from_version"] == before["to_version"]  # a chain: each move starts where the last ended
    assert registry.champion_version("genrec") == events[-1]["to_version"]


def test_gate_promotes_only_over_the_champion_it_saw(genrec_home):
    _two_versions()
    registry.move_champion("genrec", "1", reason="start", actor="test")
    with pytest.raises(registry.ChampionMoved):
        registry.move_champion("genrec", "2", reason="gate", actor="flow", expected_from=None)
    assert registry.champion_version("genrec") == "1" and len(registry.history("genrec")) == 1
    registry.move_champion("genrec", "2", reason="gate", actor="flow", expected_from="1")
    assert registry.champion_version("genrec") == "2"


MOVE = textwrap.dedent("""
    from genrec import registry
    registry.move_champion("genrec", "2", reason="gate", actor="crashing process")
""")


@pytest.mark.parametrize("point, champion", [("champion:intent", "1"), ("champion:alias", "2"),
                                             ("champion:history", "2")])
def test_a_move_killed_at_any_instruction_is_repaired(genrec_home, point, champion, caplog):
    """SIGKILL between the writes of a move (after its intent, after the alias, after the history
    entry): on the next read the alias and its history agree, and the repair is said."""
    from genrec.crashpoints import ENV

    _two_versions()
    registry.move_champion("genrec", "1", reason="start", actor="test")
    env = dict(os.environ, GENREC_HOME=str(genrec_home), **{ENV: point})
    proc = subprocess.run([sys.executable, "-c", MOVE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    events = registry.history("genrec")
    assert registry.champion_version("genrec") == champion == events[-1]["to_version"]
    assert [(e["from_version"], e["to_version"]) for e in events] == [(None, "1")] + ([("1", "2")] if champion == "2"
                                                                                        else [])
    assert registry.INTENT not in registry.client().get_registered_model("genrec").tags
    if point != "champion:history":
        assert "repaired genrec" in caplog.text
    registry.move_champion("genrec", "1", reason="rollback", actor="test")  # the chain goes on from there
    assert registry.history("genrec")[-1]["from_version"] == champion
