import pytest

from genrec.config import PRESETS, load_config
from genrec.errors import UsageError


def test_presets_and_overrides():
    tiny = load_config("tiny")
    assert tiny.model.epochs == PRESETS["tiny"]["model.epochs"]
    cfg = load_config("tiny", ["model.epochs=3", "data.rating_threshold=4", "eval.ks=5,10", "eval.primary_metric=ndcg@10"])
    assert cfg.model.epochs == 3
    assert cfg.data.rating_threshold == 4.0
    assert cfg.eval.ks == (5, 10)
    assert load_config("default", ["data.rating_threshold=none"]).data.rating_threshold is None


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_loads_and_keeps_its_values(name):
    flat = load_config(name).flat()
    assert {key: flat[key] for key in PRESETS[name]} == PRESETS[name]


def test_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "tiny"\n[model]\nhidden_g = 17\n')
    cfg = load_config(str(path), ["model.seed=5"])
    assert (cfg.model.hidden_g, cfg.model.seed, cfg.model.epochs) == (17, 5, PRESETS["tiny"]["model.epochs"])
    assert cfg.flat()["model.hidden_g"] == 17


@pytest.mark.parametrize(
    "override, message",
    [("model.nope=1", "Unknown config key 'model.nope'"), ("model.epochs=ten", "expects int"),
     ("model=3", "is a section"), ("novalue", "KEY=VALUE"), ("gate.floors=ndcg@20", "look like"),
     ("gate.changes=recall@20:sideways:1", "higher or lower"), ("gate.floors=hits@20:0.1", "does not compute"),
     ("eval.primary_metric=ndcg@50", "does not compute"), ("model.mode=both", "model.mode"),
     ("model.init=ease;model.mode=item", "model.init"), ("model.blend=mix", "model.blend"),
     ("model.mode=item", "add --set model.blend=none")],
)
def test_bad_overrides_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        load_config("default", override.split(";"))


def test_unknown_preset_or_missing_file():
    with pytest.raises(UsageError, match="neither a preset"):
        load_config("huge")
