import dataclasses

import pytest

from genrec.config import load_config, preset_names, preset_values
from genrec.errors import UsageError
from genrec.models.families import FAMILIES


def test_presets_and_overrides():
    tiny = load_config("tiny")
    assert tiny.train.epochs == preset_values("tiny")["train.epochs"]
    cfg = load_config("tiny", ["train.epochs=3", "data.rating_threshold=4", "eval.ks=5,10", "eval.primary_metric=ndcg@10"])
    assert cfg.train.epochs == 3
    assert cfg.data.rating_threshold == 4.0
    assert cfg.eval.ks == (5, 10)
    assert load_config("default", ["data.rating_threshold=none"]).data.rating_threshold is None


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_keeps_its_values(name):
    flat = load_config(name).flat()
    assert {key: flat[key] for key in preset_values(name)} == {
        k: tuple(v) if isinstance(v, list) else v for k, v in preset_values(name).items()}


def test_presets_are_the_package_files():
    assert {"default", "tiny", "cfgan-wgan", "cfgan-wide", "cfgan-ml100k", "cfgan-ml1m", "cfgan-ciao"} == set(
        preset_names())
    assert preset_values("cfgan-wgan")["train.epochs"] == 600  # from `default`, which it names as its base


def test_a_section_per_family_and_shorthand_for_the_chosen_one():
    cfg = load_config("tiny", ["model.hidden_g=17", "model.ease.lambdas=5,50"])
    assert cfg.model.section().hidden_g == 17 and cfg.model.section("cfgan").hidden_g == 17
    assert cfg.model.section("ease").lambdas == (5.0, 50.0)
    assert set(cfg.model.sections) == set(FAMILIES)
    assert {f"model.{name}" for name in FAMILIES if dataclasses.fields(FAMILIES[name].config)} <= {
        k.rsplit(".", 1)[0] for k in cfg.flat()}
    ease = load_config("tiny", ["model.name=ease", "model.lambdas=7"])
    assert ease.model.section().lambdas == (7.0,)


def test_naming_another_family_drops_the_presets_blend():
    assert load_config("default").model.blend == "ease"
    assert load_config("default", ["model.name=pop"]).model.blend == "none"
    assert load_config("default", ["model.name=pop", "model.blend=ease"]).model.blend == "ease"
    assert load_config("default", ["model.name=cfgan"]).model.blend == "ease"  # the preset's own model


def test_a_family_starts_from_its_own_training_settings_where_none_are_given(tmp_path):
    assert FAMILIES["seqgan"].train == {"patience": 5}
    assert load_config("default").train.patience == 30  # the loop's own default
    assert load_config("default", ["model.name=seqgan"]).train.patience == 5
    assert load_config("default", ["model.name=seqgan", "train.patience=40"]).train.patience == 40
    assert load_config("cfgan-ciao", ["model.name=seqgan"]).train.patience == 550  # the preset's word stands
    path = tmp_path / "c.toml"
    path.write_text('[model]\nname = "seqgan"\n[train]\npatience = 25\n')
    assert load_config(str(path)).train.patience == 25


def test_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "tiny"\n[model]\nhidden_g = 17\n[train]\nseed = 5\n')
    cfg = load_config(str(path), ["train.patience=4"])
    assert (cfg.model.section().hidden_g, cfg.train.seed, cfg.train.patience, cfg.train.epochs) == (
        17, 5, 4, preset_values("tiny")["train.epochs"])
    assert cfg.flat()["model.cfgan.hidden_g"] == 17


@pytest.mark.parametrize(
    "override, message",
    [("model.nope=1", "has no option 'nope'"), ("train.epochs=ten", "expects int"),
     ("model=3", "is a section"), ("novalue", "KEY=VALUE"), ("gate.floors=ndcg@20", "look like"),
     ("gate.changes=recall@20:sideways:1", "higher or lower"), ("gate.floors=hits@20:0.1", "does not compute"),
     ("eval.primary_metric=ndcg@50", "does not compute"), ("model.mode=both", "must be one of user, item"),
     ("model.blend=mix", "model.blend must be none or one of"), ("model.name=nosuch", "model.name must be one of"),
     ("model.epochs=5", "It is `train.epochs` now"), ("model.lambdas=1", "it is an option of ease"),
     ("train.epochs=-5", "at least 1"), ("model.input_dropout=1.5", "below 1"), ("model.lr_g=0", "above 0"),
     ("data.format=nosuch", "must be one of auto"), ("model.blend=cfgan", "model's own family"),
     ("model.ease.tuning_repeats=0", "at least 1"), ("model.cfgan=3", "is a section"),
     ("model.ema_decay=1", "ema_decay must be at least 0 and below 1")],
)
def test_bad_overrides_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        load_config("default", override.split(";"))


def test_unknown_preset_or_missing_file():
    with pytest.raises(UsageError, match="neither a preset"):
        load_config("huge")



def test_a_password_in_a_tracking_uri_is_never_printed():
    from genrec.paths import redacted

    assert redacted("postgresql+psycopg2://genrec:s3cret@db.internal:5432/mlflow") == \
        "postgresql+psycopg2://genrec:***@db.internal:5432/mlflow"
    assert redacted("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redacted("sqlite:////home/x/.genrec/mlflow.db") == "sqlite:////home/x/.genrec/mlflow.db"
