"""One conformance suite every registered family passes, with the same known answers and no
per-family case; the composite blend; the model as data."""

import dataclasses

import numpy as np
import pytest

from genrec.config import load_config
from genrec.dataset import TEST, Histories
from genrec.errors import NotFittedError
from genrec.evaluation import evaluate_scores
from genrec.models.artifacts import load_model, save_model
from genrec.models.base import Recommender
from genrec.models.families import FAMILIES, capabilities, make_model
from modeldata import checkerboard, star


def _config(name: str, *overrides: str):
    """`tiny`, long enough for the iterative families to learn these small data sets."""
    return load_config("tiny", [f"model.name={name}", "train.epochs=200", *overrides])


@pytest.fixture(scope="module")
def fitted():
    """Every family fitted once on the star data, with the `tiny` preset."""
    data = star()
    return data, {name: make_model(_config(name)).fit(data) for name in FAMILIES}


@pytest.mark.parametrize("name", sorted(FAMILIES))
class TestConformance:
    def test_the_registry_entry_is_the_family(self, name):
        family = FAMILIES[name]
        cls = family.recommender_class()
        assert issubclass(cls, Recommender) and cls.name == name
        assert dataclasses.is_dataclass(family.config)

    def test_init_stores_only_its_config(self, name):
        model = make_model(_config(name))
        assert not [k for k in vars(model) if k.endswith("_")]
        assert model.config == _config(name).model.section()

    def test_use_before_fit_raises(self, name):
        model = make_model(_config(name))
        data = star()
        with pytest.raises(NotFittedError):
            model.score_users(np.array([0]))
        with pytest.raises(NotFittedError):
            model.recommend(np.array([0]), k=3)
        with pytest.raises(NotFittedError):
            model.get_state()
        with pytest.raises(NotFittedError):
            model.score(data.histories(np.array([0])))

    def test_known_answer_the_star_comes_first(self, name, fitted):
        data, models = fitted
        model = models[name]
        without_star = np.flatnonzero(np.diff(data.test.indptr) > 0)
        items, _ = model.recommend(without_star, k=1)
        assert items[:, 0].tolist() == [data.n_items - 1] * len(without_star)
        assert evaluate_scores(model.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"] == 1.0

    def test_recommend_excludes_seen_and_pads(self, name, fitted):
        data, models = fitted
        model = models[name]
        users = np.arange(data.n_users)
        items, scores = model.recommend(users, k=data.n_items)
        assert items.shape == scores.shape == (data.n_users, data.n_items)
        for u in users:
            seen = set(data.known[u].indices)
            shown = items[u][items[u] >= 0]
            assert not seen & set(shown.tolist())
            assert len(shown) == data.n_items - len(seen) and (items[u][len(shown):] == -1).all()
            assert np.isnan(scores[u][len(shown):]).all()
        everything, _ = model.recommend(users[:2], k=data.n_items, exclude_seen=False)
        assert (everything >= 0).all()
        assert isinstance(model.chosen_params_, dict)

    def test_scores_histories_as_it_scores_its_users(self, name, fitted):
        data, models = fitted
        model = models[name]
        if not capabilities(name, model.config).scores_histories:
            pytest.skip(f"{name} with these settings declares it scores no new history")
        users = np.arange(data.n_users)
        np.testing.assert_allclose(model.score(data.histories(users)), model.score_users(users), rtol=1e-5, atol=1e-6)

    def test_the_model_as_data_scores_the_same(self, name, fitted, tmp_path):
        data, models = fitted
        model = models[name]
        save_model(model, tmp_path / "model")
        assert {p.name for p in (tmp_path / "model").iterdir()} == {"model.json", "weights.safetensors"}
        loaded = load_model(tmp_path / "model")
        assert type(loaded) is type(model) and loaded.config == model.config
        histories = data.histories()
        assert np.array_equal(loaded.score(histories), model.score(histories))

    def test_fits_are_reproducible(self, name, fitted):
        data, models = fitted
        again = make_model(_config(name)).fit(data)
        users = np.arange(data.n_users)
        assert np.array_equal(again.score_users(users), models[name].score_users(users))


def test_the_loaded_model_keeps_no_users(fitted, tmp_path):
    data, models = fitted
    save_model(models["ease"], tmp_path / "m")
    with pytest.raises(NotFittedError, match="loaded from its state"):
        load_model(tmp_path / "m").score_users(np.array([0]))


@pytest.mark.parametrize("name", ["ease", "itemknn", "cfgan"])
def test_known_answer_checkerboard(name):
    """A held-out diagonal that only a model of co-occurrence can find (popularity cannot)."""
    data = checkerboard(3)
    model = make_model(_config(name)).fit(data)
    items, _ = model.recommend(np.arange(data.n_users), k=1)
    assert items[:, 0].tolist() == list(range(data.n_users))


# --- the blend, a composite ----------------------------------------------------------------------


def test_blend_keeps_the_partner_where_the_first_adds_nothing():
    """Popularity ranks no block's held-out item first, EASE ranks each first: validation gives
    popularity weight 0, and the blend scores as EASE refitted on train + validation."""
    data = checkerboard(3, validation=True)
    cfg = load_config("tiny", ["model.name=pop", "model.blend=ease", "model.ease.lambdas=5"])
    blend = make_model(cfg).fit(data)
    assert blend.weight_ == 0.0 and blend.chosen_params_ == {"blend_weight": 0.0, "ease_lambda": 5.0}
    ease = make_model(load_config("tiny", ["model.name=ease", "model.lambdas=5"])).fit(data)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(blend.score_users(users), ease.score_users(users), atol=1e-6)


def test_blend_weights_mix_standardised_scores(tmp_path):
    """Weight 1 is the first model alone, bit for bit; 0.5 is the mean of both standardised scores."""
    from genrec.models.blend import mix_scores

    data = checkerboard(3, validation=True)
    base = ["model.name=itemknn", "model.neighbours=3", "model.ease.lambdas=5"]
    first = make_model(load_config("tiny", base)).fit(data)
    ease = make_model(load_config("tiny", ["model.name=ease", "model.lambdas=5"])).fit(data)
    users = np.arange(data.n_users)
    only = make_model(load_config("tiny", [*base, "model.blend=ease", "model.blend_weights=1"])).fit(data)
    assert only.weight_ == 1.0 and not only.mixes_
    assert np.array_equal(only.score_users(users), first.score_users(users))
    half = make_model(load_config("tiny", [*base, "model.blend=ease", "model.blend_weights=0.5"])).fit(data)
    a, b = first.score_users(users), ease.score_users(users)
    z = lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(half.score_users(users), (z(a) + z(b)) / 2, atol=1e-5)
    np.testing.assert_allclose(mix_scores(0.5, a, b), (z(a) + z(b)) / 2, atol=1e-5)
    save_model(half, tmp_path / "blend")
    histories = data.histories()
    assert np.array_equal(load_model(tmp_path / "blend").score(histories), half.score(histories))


def test_row_moments_are_each_rows_mean_and_sd_and_a_constant_row_has_none():
    from genrec.models.blend import row_moments

    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((4, 5000)) * [[1.0], [1e-3], [50.0], [0.0]] + [[0.0], [1000.0], [-3.0], [7.3]])
    mean, sd = row_moments(scores.astype(np.float32))
    np.testing.assert_allclose(mean, scores.mean(axis=1), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(sd[:3], scores.std(axis=1)[:3], rtol=1e-3)
    assert sd[3] == 0.0  # constant: mixed in as 0, not blown up by rounding


def test_a_blend_and_its_parts_are_evaluated_in_one_pass_as_each_alone():
    from genrec import pipeline

    from modeldata import BLOCK, dataset

    # Blocks of users and items: each user's own item held out for validation, the next one for test.
    rows = [(u, i, 1 if i == u else 2 if i == u // BLOCK * BLOCK + (u + 1) % BLOCK else 0)
            for u in range(3 * BLOCK) for i in range(u // BLOCK * BLOCK, (u // BLOCK + 1) * BLOCK)]
    data = dataset(rows, 3 * BLOCK, 3 * BLOCK)
    cfg = load_config("tiny", ["model.name=pop", "model.blend=ease", "model.ease.lambdas=5", "model.blend_weights=0.5"])
    blend = make_model(cfg).fit(data)
    together, parts = pipeline.evaluate_with_components(blend, data, cfg)
    assert together.metrics == pipeline.evaluate(blend, data, cfg).metrics
    assert parts == {part.name: pipeline.evaluate(part, data, cfg).metrics for part in (blend.first, blend.second)}
    assert parts["pop"]["ndcg@5"] < parts["ease"]["ndcg@5"] == 1.0  # two models, measured apart


def test_blend_needs_validation_and_a_catalogue_the_partner_can_hold(caplog):
    base = ["model.name=itemknn", "model.blend=ease"]
    without_validation = make_model(load_config("tiny", base)).fit(checkerboard(2))
    too_many_items = make_model(load_config("tiny", [*base, "model.blend_max_items=10", "model.blend_large=none"])
                                ).fit(checkerboard(2, validation=True))
    for model in (without_validation, too_many_items):
        assert model.weight_ == 1.0 and not model.mixes_ and "blend_weight" not in model.chosen_params_
    assert "needs a validation split" in caplog.text and "blend_max_items" in caplog.text


def test_above_the_dense_partners_size_the_blend_takes_the_scalable_one(tmp_path):
    data = checkerboard(2, validation=True)
    model = make_model(load_config("tiny", ["model.name=itemknn", "model.blend=ease", "model.blend_max_items=10",
                                            "model.blend_weights=0"])).fit(data)
    assert model.second.name == "ease-lowrank" and "ease-lowrank_lambda" in model.chosen_params_
    save_model(model, tmp_path / "blend")
    histories = data.histories()
    assert np.array_equal(load_model(tmp_path / "blend").score(histories), model.score(histories))


def test_a_blend_needs_models_that_score_histories():
    from genrec.errors import UsageError
    from genrec.pipeline import check_trainable

    with pytest.raises(UsageError, match="model.blend=none"):
        check_trainable(load_config("default", ["model.mode=item"]), served=False)
    with pytest.raises(UsageError, match="cannot be served"):
        check_trainable(load_config("default", ["model.mode=item", "model.blend=none"]), served=True)
    check_trainable(load_config("default", ["model.mode=item", "model.blend=none"]), served=False)


def test_histories_keep_order_and_rows():
    h = Histories.from_lists([[3, 1, 2], [], [0]], n_items=4)
    assert h.row(0).tolist() == [3, 1, 2] and h.take(np.array([2, 0])).row(1).tolist() == [3, 1, 2]
    assert h.matrix().toarray().tolist() == [[0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    data = star()
    first = data.histories(np.array([0]), splits=("train", "validation", "test")).row(0)
    assert first.tolist() == [0, 1, 2, data.n_items - 1]  # time order, the held-out star last
    assert data.events.split[data.events.user == 0][-1] == TEST
