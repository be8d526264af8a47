"""CFGAN's own known answers: its schemes and losses learn the checkerboard, its masks and its
gradient penalty compute what the paper says, its networks read sparse rows as dense ones."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from genrec.config import load_config
from genrec.errors import UsageError
from genrec.evaluation import evaluate_scores
from genrec.models.cfgan.networks import Discriminator, Generator, SparseRows
from genrec.models.cfgan.trainer import CFGANTrainer
from modeldata import checkerboard
from test_training import FAST, cfgan


def _ndcg1(model, data) -> float:
    return evaluate_scores(model.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"]


@pytest.mark.parametrize("scheme", ["ZR", "ZP"])
def test_schemes_with_zero_reconstruction_learn_the_blocks(scheme):
    data = checkerboard(3)
    model = cfgan(f"model.scheme={scheme}", "train.epochs=150").fit(data)
    assert _ndcg1(model, data) == 1.0


def test_wasserstein_loss_learns_the_blocks():
    data = checkerboard(3)
    model = cfgan("model.loss=wgan-gp", "model.gp_weight=1", "model.lr_g=1e-2", "model.lr_d=1e-2", "model.d_steps=2",
                  "train.epochs=250").fit(data)
    assert _ndcg1(model, data) == 1.0


def test_item_based_learns_the_blocks_and_scores_only_known_users():
    data = checkerboard(3)
    model = cfgan("model.mode=item", "train.epochs=150").fit(data)
    assert _ndcg1(model, data) == 1.0
    assert model.score_users(np.arange(3)).shape == (3, data.n_items)
    with pytest.raises(UsageError, match="item-based"):
        model.score(data.histories(np.arange(2)))


def _trainer(*overrides: str) -> tuple[CFGANTrainer, torch.Tensor]:
    cfg = load_config("tiny", [*FAST, *overrides]).model.section()
    train = checkerboard(2).train
    return CFGANTrainer(cfg, train, torch.device("cpu"), seed=0), torch.from_numpy(train.toarray())


def test_wasserstein_critic_loss_with_its_gradient_penalty():
    # A critic linear in the vector (no hidden layer) has the gradient w (its vector weights)
    # everywhere, so the penalty is exactly gp_weight x (|w| - 1)^2.
    trainer, real = _trainer("model.loss=wgan-gp", "model.gp_weight=3", "model.layers_d=0")
    fake = torch.rand(real.shape, generator=torch.Generator().manual_seed(1))
    loss = trainer.critic_loss(real, real, real, fake)
    d = trainer.discriminator
    w = d.vector_in.weight[:, 0]
    critic = lambda v: real @ d.condition_in.weight[:, 0] + d.condition_in.bias + v @ w  # noqa: E731
    expected = critic(fake).mean() - critic(real).mean() + 3.0 * (w.norm() - 1) ** 2
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("scheme", ["ZR", "PM", "ZP"])
def test_masks_follow_the_scheme(scheme):
    trainer, real = _trainer(f"model.scheme={scheme}", "model.pm_ratio=0.5", "model.zr_ratio=0.25")
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


def test_networks_read_sparse_and_dense_rows_alike():
    start = torch.Generator().manual_seed(0)
    rows = sp.random(7, 30, density=0.2, format="lil", dtype=np.float32, random_state=0)
    rows[3] = 0  # an empty history: an empty bag
    rows = rows.tocsr()
    dense = torch.from_numpy(rows.toarray())
    generator = Generator(30, 16, 2, start)
    torch.testing.assert_close(generator(SparseRows.from_csr(rows, torch.device("cpu"))), generator(dense))
    # The split discriminator is the one layer over [condition, vector] it was initialised as.
    disc = Discriminator(30, 8, 1, start)
    whole = torch.cat([disc.condition_in.weight, disc.vector_in.weight])  # (2 x items) x width
    expected = disc.rest(torch.cat([dense, dense * 2], dim=1) @ whole + disc.condition_in.bias).squeeze(1)
    (judged,) = disc(dense, dense * 2)
    torch.testing.assert_close(judged, expected)
    sparse = SparseRows.from_csr(rows, torch.device("cpu"))
    torch.testing.assert_close(disc(sparse, sparse)[0], disc(dense, dense)[0])


def test_the_seed_is_a_generator_not_the_process_state():
    """Fitting draws from its own generators: the process's seed does not reach it, NumPy's global
    state is untouched, and a different train.seed gives different weights."""
    data = checkerboard(2)
    before = np.random.get_state()[1].copy()
    a = cfgan("train.epochs=3").fit(data)
    torch.manual_seed(123)  # the process's state does not reach the fit
    b = cfgan("train.epochs=3").fit(data)
    c = cfgan("train.epochs=3", "train.seed=1").fit(data)
    users = np.arange(data.n_users)
    assert np.array_equal(a.score_users(users), b.score_users(users))
    assert not np.array_equal(a.score_users(users), c.score_users(users))
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_trains_on_cuda_and_serves_on_cpu():
    data = checkerboard(3)
    model = cfgan("train.device=cuda", "train.epochs=150").fit(data)
    assert next(model.generator_.parameters()).device.type == "cpu" and model.trained_on_.startswith("cuda")
    assert _ndcg1(model, data) == 1.0
