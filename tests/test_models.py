"""One conformance suite every model passes, plus each model's known answer."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from genrec.config import ModelConfig
from genrec.errors import NotFittedError
from genrec.evaluation import evaluate_scores
from genrec.models import FAMILIES, make_model
from genrec.models.cfgan import CFGAN

BLOCK = 8


def checkerboard(n_blocks: int = 3) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Users and items in blocks; each user saw every item of their block but one (the diagonal),
    which is held out. The held-out item is the known top-1 answer for a model that learns blocks."""
    n = n_blocks * BLOCK
    train_rows, train_cols, test_rows, test_cols = [], [], [], []
    for u in range(n):
        block = u // BLOCK
        for i in range(block * BLOCK, (block + 1) * BLOCK):
            (test_rows if i == u else train_rows).append(u)
            (test_cols if i == u else train_cols).append(i)
    train = sp.csr_matrix((np.ones(len(train_rows), np.float32), (train_rows, train_cols)), shape=(n, n))
    test = sp.csr_matrix((np.ones(len(test_rows), np.float32), (test_rows, test_cols)), shape=(n, n))
    return train, test


CFGAN_FAST = dict(hidden_g=64, input_dropout=0.5, hidden_d=16, batch_g=32, batch_d=32, lr_g=1e-2, lr_d=1e-3, g_steps=1, d_steps=1,
                  epochs=150, zr_coefficient=0.1, reg_g=0.0, device="cpu", seed=0)


def fitted(name: str, train: sp.csr_matrix, validation=None):
    if name == "cfgan":
        return CFGAN(**CFGAN_FAST).fit(train, validation)
    return make_model(ModelConfig(name=name)).fit(train, validation)


@pytest.mark.parametrize("name", sorted(FAMILIES))
class TestConformance:
    def test_use_before_fit_raises(self, name):
        model = make_model(ModelConfig(name=name))
        with pytest.raises(NotFittedError):
            model.score(np.array([0]))
        with pytest.raises(NotFittedError):
            model.recommend(np.array([0]), k=3)

    def test_init_stores_only_hyperparameters(self, name):
        model = make_model(ModelConfig(name=name))
        assert not [k for k in vars(model) if k.endswith("_")]

    def test_recommend_excludes_seen_and_pads(self, name):
        train, _ = checkerboard(2)
        model = fitted(name, train)
        items, scores = model.recommend(np.arange(train.shape[0]), k=3)
        assert items.shape == scores.shape == (train.shape[0], 3)
        for u in range(train.shape[0]):
            seen = set(train[u].indices)
            assert not seen & set(items[u][items[u] >= 0].tolist())
        # With exclude_seen=False the user's own items may come back.
        items_all, _ = model.recommend(np.arange(2), k=train.shape[1], exclude_seen=False)
        assert (items_all >= 0).all()
        assert model.score(np.arange(2)).shape == (2, train.shape[1])
        assert isinstance(model.chosen_params_, dict)


@pytest.mark.parametrize("name", ["cfgan", "cfgan-item", "cfgan-ease", "ease", "itemknn"])
def test_known_answer_checkerboard(name):
    train, test = checkerboard(3)
    if name == "cfgan-item":  # item-based: the generator completes items' vectors of users
        model = CFGAN(**{**CFGAN_FAST, "mode": "item"}).fit(train)
    elif name == "cfgan-ease":  # started from EASE, then trained adversarially
        model = CFGAN(**{**CFGAN_FAST, "init": "ease", "epochs": 20, "lr_g": 1e-4}).fit(train)
    else:
        model = fitted(name, train)
    items, _ = model.recommend(np.arange(train.shape[0]), k=1)
    assert items[:, 0].tolist() == list(range(train.shape[0]))  # the held-out diagonal, for every user
    result = evaluate_scores(model.score, train, test, ks=(1,))
    assert result.metrics["ndcg@1"] == 1.0


def test_popularity_known_answer():
    # item 2 is seen by 4 users, item 0 by 3, item 1 by 2, item 3 by 1.
    rows = [0, 1, 2, 3, 0, 1, 2, 0, 1, 4]
    cols = [2, 2, 2, 2, 0, 0, 0, 1, 1, 3]
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(5, 5))
    model = fitted("pop", train)
    items, scores = model.recommend(np.array([3, 4]), k=3)
    assert items.tolist() == [[0, 1, 3], [2, 0, 1]]  # user 3 saw item 2, user 4 saw item 3
    assert scores[1].tolist() == [4.0, 3.0, 2.0]


def test_cfgan_early_stops_on_validation_and_keeps_best_epoch():
    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "epochs": 400, "patience": 10}).fit(train, validation=test)
    assert len(model.history_) < 400  # stopped early
    assert model.best_epoch_ == max(model.history_, key=lambda h: h["val_ndcg@20"])["epoch"]
    assert len(model.history_) - model.best_epoch_ == 10
    assert {"d_loss", "g_loss", "val_ndcg@20"} <= set(model.history_[0])


def test_cfgan_patience_waits_until_the_generator_beats_popularity(caplog):
    """Every validation item is the most popular item its user has not seen, so popularity's
    NDCG@20 is 1 and no generator beats it: patience never starts counting and every epoch runs
    (an untrained generator's flat score would stop it at epoch 3 with patience 2)."""
    rng = np.random.default_rng(0)
    train = np.zeros((30, 12), np.float32)
    train[10:, 0] = 1  # item 0: the most popular, unseen by users 0-9
    for u in range(30):
        train[u, rng.choice(np.arange(1, 12), size=3, replace=False)] = 1
    validation = np.zeros_like(train)
    validation[:10, 0] = 1
    model = CFGAN(**{**CFGAN_FAST, "lr_g": 0.0, "epochs": 8, "patience": 2}).fit(
        sp.csr_matrix(train), validation=sp.csr_matrix(validation))
    assert model.popularity_score_ == 1.0
    assert len(model.history_) == 8
    assert "never ranked better than popularity" in caplog.text


def test_cfgan_is_seeded():
    train, _ = checkerboard(2)
    a = CFGAN(**{**CFGAN_FAST, "epochs": 5}).fit(train).score(np.arange(4))
    b = CFGAN(**{**CFGAN_FAST, "epochs": 5}).fit(train).score(np.arange(4))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("scheme", ["ZR", "ZP"])
def test_cfgan_schemes_with_zero_reconstruction_learn_the_blocks(scheme):
    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "scheme": scheme}).fit(train)
    assert evaluate_scores(model.score, train, test, ks=(1,)).metrics["ndcg@1"] == 1.0


def test_cfgan_wasserstein_loss_learns_the_blocks():
    train, test = checkerboard(3)
    wgan = {"loss": "wgan-gp", "gp_weight": 1.0, "lr_g": 1e-2, "lr_d": 1e-2, "d_steps": 2}
    model = CFGAN(**{**CFGAN_FAST, **wgan}).fit(train)
    assert evaluate_scores(model.score, train, test, ks=(1,)).metrics["ndcg@1"] == 1.0


def test_wasserstein_critic_loss_with_its_gradient_penalty():
    from genrec.models.cfgan import CFGANTrainer

    # A critic linear in the vector (no hidden layer) has the gradient w (its vector weights)
    # everywhere, so the penalty is exactly gp_weight x (|w| - 1)^2.
    train, _ = checkerboard(2)
    model = CFGAN(**{**CFGAN_FAST, "loss": "wgan-gp", "gp_weight": 3.0, "layers_d": 0})
    trainer = CFGANTrainer(model, train.tocsr(), torch.device("cpu"))
    real = torch.from_numpy(train.toarray())
    fake = torch.rand(real.shape, generator=torch.Generator().manual_seed(1))
    loss = trainer._critic_loss(real, real, real, fake)
    d = trainer.discriminator
    w = d.vector_in.weight[:, 0]
    critic = lambda v: real @ d.condition_in.weight[:, 0] + d.condition_in.bias + v @ w
    expected = critic(fake).mean() - critic(real).mean() + 3.0 * (w.norm() - 1) ** 2
    torch.testing.assert_close(loss, expected)


def test_cfgan_noise_input_is_trained_and_served_at_its_mean():
    from genrec.models.networks import Generator

    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "noise_dim": 8, "epochs": 200}).fit(train)
    generator = model.generator_
    torch.manual_seed(CFGAN_FAST["seed"])  # the fit's start, as the trainer draws it
    start = Generator(train.shape[1], CFGAN_FAST["hidden_g"], 1, noise_dim=8)
    assert not torch.allclose(generator.noise_in.weight, start.noise_in.weight)  # the noise's map was trained
    rows = torch.from_numpy(train[:4].toarray())
    noise = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(generator(rows), generator(rows, torch.zeros(4, 8)))  # served at z = 0
        assert not torch.allclose(generator(rows), generator(rows, noise))
    assert np.array_equal(model.score(np.arange(4)), model.score(np.arange(4)))
    assert evaluate_scores(model.score, train, test, ks=(1,)).metrics["ndcg@1"] == 1.0


def test_generator_reads_sparse_and_dense_conditions_alike():
    from genrec.models.networks import Discriminator, Generator, SparseRows

    torch.manual_seed(0)
    rows = sp.random(7, 30, density=0.2, format="lil", dtype=np.float32, random_state=0)
    rows[3] = 0  # an empty history: an empty bag
    rows = rows.tocsr()
    dense = torch.from_numpy(rows.toarray())
    generator = Generator(30, 16, 2)
    torch.testing.assert_close(generator(SparseRows.from_csr(rows, torch.device("cpu"))), generator(dense))
    # The split discriminator is the one layer over [condition, vector] it was initialised as.
    disc = Discriminator(30, 8, 1)
    whole = torch.cat([disc.condition_in.weight, disc.vector_in.weight])  # (2 x items) x width
    expected = disc.rest(torch.cat([dense, dense * 2], dim=1) @ whole + disc.condition_in.bias).squeeze(1)
    (judged,) = disc(dense, dense * 2)
    torch.testing.assert_close(judged, expected)
    sparse = SparseRows.from_csr(rows, torch.device("cpu"))
    torch.testing.assert_close(disc(sparse, sparse)[0], disc(dense, dense)[0])


@pytest.mark.parametrize("scheme", ["ZR", "PM", "ZP"])
def test_cfgan_masks_follow_the_scheme(scheme):
    from genrec.models.cfgan import CFGANTrainer

    train, _ = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "scheme": scheme, "pm_ratio": 0.5, "zr_ratio": 0.25})
    trainer = CFGANTrainer(model, train.tocsr(), torch.device("cpu"))
    real = torch.from_numpy(train.toarray())
    torch.manual_seed(0)
    real = real.repeat(200, 1)
    unobserved = real == 0
    pm, zr = trainer._pm_mask(unobserved, real), trainer._zr_mask(unobserved)
    zr = torch.zeros_like(real) if zr is None else zr
    k_u = pm - real
    assert ((k_u == 0) | ((k_u == 1) & unobserved)).all()  # e_u + k_u, k_u among unobserved items only
    assert ((zr == 0) | unobserved).all()
    share_pm = float(k_u[unobserved].mean())
    share_zr = float(zr[unobserved].mean())
    assert share_pm == (pytest.approx(0.5, abs=0.01) if scheme in ("PM", "ZP") else 0.0)
    assert share_zr == (pytest.approx(0.25, abs=0.01) if scheme in ("ZR", "ZP") else 0.0)


def test_cfgan_checkpoint_describes_itself(tmp_path):
    train, test = checkerboard(2)
    model = CFGAN(**{**CFGAN_FAST, "epochs": 5}).fit(train, test)
    path = tmp_path / "ckpt.pt"
    model.save_checkpoint(path, data_fingerprint="abc", config={"model": {"epochs": 5}})
    ckpt = torch.load(path, weights_only=False)
    assert {"generator", "discriminator", "opt_g", "opt_d", "hyperparameters", "best_epoch",
            "best_val_ndcg@20", "chosen_on_validation", "data_fingerprint", "config"} <= set(ckpt)
    assert ckpt["hyperparameters"]["hidden_g"] == 64 and ckpt["data_fingerprint"] == "abc"
    assert ckpt["chosen_on_validation"] == {"epochs": model.best_epoch_}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cfgan_trains_on_cuda_and_serves_on_cpu():
    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "device": "cuda"}).fit(train)
    assert next(model.generator_.parameters()).device.type == "cpu"
    assert evaluate_scores(model.score, train, test, ks=(1,)).metrics["ndcg@1"] == 1.0


def test_cfgan_ease_start_is_ease():
    """With init=ease and no adversarial epoch, the generator scores exactly as EASE fitted on the
    same matrix with the same lambda."""
    from genrec.models.ease import EASE

    train, _ = checkerboard(3)
    cfgan = CFGAN(**{**CFGAN_FAST, "init": "ease", "ease_lambdas": (5.0,), "epochs": 0}).fit(train)
    ease = EASE(lambdas=(5.0,)).fit(train)
    users = np.arange(train.shape[0])
    np.testing.assert_allclose(cfgan.score(users), ease.score(users), atol=1e-5)


def test_cfgan_ease_start_competes_in_early_stopping():
    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "init": "ease", "epochs": 30, "patience": 5}).fit(train, validation=test)
    assert model.init_score_ is not None
    assert model.best_score_ >= model.init_score_
    assert model.best_epoch_ == 0 or model.history_[model.best_epoch_ - 1]["val_ndcg@20"] > model.init_score_


def test_cfgan_refit_trains_again_on_train_and_validation():
    train, test = checkerboard(3)
    kwargs = {**CFGAN_FAST, "epochs": 30, "patience": 5}
    plain = CFGAN(**kwargs).fit(train, validation=test)
    refit = CFGAN(**kwargs, refit=True).fit(train, validation=test)
    assert refit.best_epoch_ == plain.best_epoch_ and refit.chosen_params_ == {"epochs": plain.best_epoch_, "refit": True}
    # The refitted generator saw the validation items as training data: a user's held-out item now
    # sits in its input, so its scores differ from the generator trained without it.
    assert not np.allclose(refit.score(np.arange(4)), plain.score(np.arange(4)))
    # The refit runs beside the selection run; what it keeps is what training from scratch on
    # train + validation for the chosen number of epochs gives.
    again = CFGAN(**{**kwargs, "epochs": plain.best_epoch_}).fit((train + test).tocsr(), validation=None)
    users = np.arange(train.shape[0])
    np.testing.assert_allclose(refit.score(users), again.score(users), rtol=1e-5, atol=1e-6)
    # ...and the selection run beside it draws as it would alone.
    assert [r["val_ndcg@20"] for r in refit.history_] == [r["val_ndcg@20"] for r in plain.history_]


def test_cfgan_blend_keeps_ease_where_the_generator_adds_nothing():
    """An untrained generator (no epoch) adds only noise to EASE, which ranks every block's held-out
    item first: validation keeps weight 0, and the scores are EASE's refitted on train + validation."""
    from genrec.models.ease import EASE

    train, test = checkerboard(3)
    model = CFGAN(**{**CFGAN_FAST, "blend": "ease", "ease_lambdas": (5.0,), "epochs": 0}).fit(train, validation=test)
    assert model.blend_weight_ == 0.0
    assert model.chosen_params_ == {"epochs": 0, "blend_weight": 0.0, "ease_lambda": 5.0}
    ease = EASE(lambdas=(5.0,)).fit(train, validation=test)
    users = np.arange(train.shape[0])
    np.testing.assert_allclose(model.score(users), ease.score(users), atol=1e-5)
    np.testing.assert_allclose(model.score_history(train[:3]), ease.score_history(train[:3]), atol=1e-5)


def test_cfgan_blend_weights_mix_standardised_scores():
    """Weight 1 is the generator alone, bit for bit; 0.5 is the mean of both standardised scores."""
    from genrec.models.cfgan import mix_scores
    from genrec.models.ease import ease_weights

    train, test = checkerboard(3)
    kwargs = {**CFGAN_FAST, "epochs": 5}
    alone = CFGAN(**kwargs).fit(train, validation=test)
    users = np.arange(train.shape[0])
    only = CFGAN(**kwargs, blend="ease", blend_weights=(1.0,)).fit(train, validation=test)
    assert only.blend_weight_ == 1.0 and only.ease_weights_ is None
    assert np.array_equal(only.score(users), alone.score(users))
    half = CFGAN(**kwargs, blend="ease", blend_weights=(0.5,), ease_lambdas=(5.0,)).fit(train, validation=test)
    generated, ease = alone.score(users), np.asarray(half.train_ @ ease_weights(half.train_, 5.0))
    z = lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(half.score(users), (z(generated) + z(ease)) / 2, atol=1e-4)
    np.testing.assert_allclose(mix_scores(0.5, generated, ease), (z(generated) + z(ease)) / 2, atol=1e-4)


def test_cfgan_blend_needs_validation_and_a_catalogue_ease_can_hold(caplog):
    train, test = checkerboard(2)
    kwargs = {**CFGAN_FAST, "epochs": 2, "blend": "ease"}
    without_validation = CFGAN(**kwargs).fit(train)
    too_many_items = CFGAN(**kwargs, blend_max_items=train.shape[1] - 1).fit(train, validation=test)
    for model in (without_validation, too_many_items):
        assert model.blend_weight_ == 1.0 and model.ease_weights_ is None and "blend_weight" not in model.chosen_params_
    assert "needs a validation split" in caplog.text and "blend_max_items" in caplog.text
    with pytest.raises(ValueError, match="blend=ease needs mode=user"):
        CFGAN(**kwargs, mode="item").fit(train, validation=test)


def test_item_based_cfgan_scores_only_known_users():
    from genrec.errors import UsageError

    train, _ = checkerboard(2)
    model = CFGAN(**{**CFGAN_FAST, "mode": "item", "epochs": 3}).fit(train)
    assert model.score(np.arange(3)).shape == (3, train.shape[1])
    with pytest.raises(UsageError, match="item-based"):
        model.score_history(train[:2])
