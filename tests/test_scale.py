"""Shop scale: CFGAN trained at the cost of the interactions, the low-rank EASE, validation and
test users sampled, the synthetic shop log; and an epoch on a 200K-item catalogue under a memory
cap (nothing densifies users x items)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from genrec.config import load_config
from genrec.evaluation import sample_rows
from genrec.models.average import Average
from genrec.models.cfgan.networks import Generator, SparseRows
from genrec.models.cfgan.sampled import Drawn, item_tables
from genrec.models.rows import Moved, Optimisers, Read, distinct
from genrec.models.ease import ease_weights
from genrec.models.lowrank import LowRankScorer, factors
from genrec.synthetic import ShopShape, shop_log
from modeldata import checkerboard
from test_cfgan import _ndcg1, cfgan
from test_training import FAST


@pytest.mark.parametrize("scheme", [("model.scheme=ZR",), ("model.scheme=ZP", "model.loss=wgan-gp")],
                         ids=["ZR", "ZP-wgan-gp"])
def test_sampled_outputs_learn_the_blocks(scheme):
    # ZP with WGAN-GP reads D's vector half at the drawn items too, and differentiates it twice.
    data = checkerboard(3)
    model = cfgan("model.output=sampled", "model.negatives=16", *scheme, "train.epochs=150").fit(data)
    assert _ndcg1(model, data) == 1.0


@pytest.mark.parametrize("form", ["today", "earlier"])
def test_the_sampled_trainer_resumes_to_the_uninterrupted_one(form):
    """A sampled trainer with a weight average, loaded from the state after one epoch (`earlier`:
    the average's state in the form checkpoints had before it was `Average`'s: the averaged
    module, each table row's last step, the step), trains its second epoch to the same kept
    generator as one never interrupted."""
    import copy

    from genrec.models.cfgan.sampled import SampledCFGANTrainer

    rows = checkerboard(3).train
    cfg = load_config("tiny", [*FAST, "model.output=sampled", "model.negatives=16", "model.ema_decay=0.9"]).model.section()
    whole = SampledCFGANTrainer(cfg, rows, torch.device("cpu"), 0)
    whole.train_epoch()
    state = copy.deepcopy(whole.state_dict())
    whole.train_epoch()
    if form == "earlier":
        average = state["average"]
        state["average"] = {"module": average["sums"], "last": average["current"], "step": average["steps"]}
    resumed = SampledCFGANTrainer(cfg, rows, torch.device("cpu"), 1)
    resumed.load_state_dict(state)
    resumed.train_epoch()
    kept, expected = resumed.kept_generator.state_dict(), whole.kept_generator.state_dict()
    assert not torch.equal(expected["net.2.weight"], whole.generator.state_dict()["net.2.weight"])
    for name, value in expected.items():
        assert torch.equal(kept[name], value), name


def test_auto_samples_only_where_the_full_output_costs_more():
    cfg = load_config("default").model.section()
    small = sp.random(943, 1682, density=0.05, format="csr", random_state=0)  # ML-100K's shape
    rows = np.repeat(np.arange(200_000), 20)
    shop = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, rows % 30_000)), shape=(200_000, 30_000))
    assert not cfg.sampled(small) and cfg.sampled(shop)
    assert not load_config("cfgan-ml100k").model.section().sampled(shop)  # the published presets stay full


def test_the_zero_reconstruction_estimate_is_unbiased():
    # The drawn items' weighted sum of squares averages to zr_ratio x the sum over all unobserved items.
    rng = np.random.default_rng(0)
    real = sp.csr_matrix(np.array([[1, 0, 0, 1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]], dtype=np.float32))
    out = rng.random((2, 10))
    expected = 0.7 * (out**2 * (real.toarray() == 0)).sum(axis=1)
    estimates = []
    for _ in range(4000):
        drawn = Drawn.of(real, 3, 0.7, rng)
        at = out[:, drawn.shared] * ~drawn.own
        estimates.append((at**2).sum(axis=1) * drawn.zr_weight)
    np.testing.assert_allclose(np.mean(estimates, axis=0), expected, rtol=0.03)


def test_the_average_from_the_weights_is_an_ema_taken_at_every_step():
    # The sampled CFGAN's average: its item tables averaged at the rows each step moves, the rest
    # every step, from the weights before the first step and uncorrected, as an EMA taken of the
    # whole network at every step from those weights.
    torch.manual_seed(0)
    network = Generator(50, 8, 1)
    params = dict(network.named_parameters())
    tables = tuple(n for n, p in params.items() if any(p is t for t in item_tables(network)))
    lazy = Average(network, 0.9, tables, start="weights")
    every = {n: p.detach().clone() for n, p in params.items()}
    rng = np.random.default_rng(0)
    for _ in range(30):
        rows = {n: torch.from_numpy(np.sort(rng.choice(50, 5, replace=False))) for n in tables}
        before = {n: params[n].detach()[r].clone() for n, r in rows.items()}
        with torch.no_grad():
            for n, p in params.items():
                if n in rows:
                    p[rows[n]] += torch.randn(len(rows[n]), p.shape[1])
                else:
                    p += 0.1 * torch.randn_like(p)
        lazy.step({n: Moved(r, before[n], params[n].detach()[r].clone()) for n, r in rows.items()})
        for n, p in params.items():
            every[n] = 0.9 * every[n] + 0.1 * p.detach()
    averaged = lazy.weights()
    assert set(tables) == {"net.0.weight", "net.2.weight"}
    for n in every:
        torch.testing.assert_close(averaged[n], every[n], rtol=1e-5, atol=1e-5)


def test_the_item_tables_adam_is_torchs_sparse_adam_plus_the_l2_penalty():
    # Steps that read rows with repeats, ours through each table's block of distinct rows, theirs
    # through sparse embeddings: the same weights as SparseAdam on the gradient plus reg x w at the
    # rows read, and the small parameters' Adam as torch's.
    torch.manual_seed(0)
    ours, theirs = Generator(40, 6, 1), Generator(40, 6, 1)
    theirs.load_state_dict(ours.state_dict())
    opt = Optimisers(ours, item_tables(ours), 0.01, 0.1, (0.9, 0.999))
    tables = [theirs.net[0].weight, theirs.net[-1].weight]
    sparse = torch.optim.SparseAdam(tables, lr=0.01)
    dense = torch.optim.Adam([p for p in theirs.parameters() if all(p is not t for t in tables)], lr=0.01,
                             weight_decay=0.1)
    rng = np.random.default_rng(0)
    for _ in range(6):
        items = rng.choice(40, 12)  # with repeats
        x = sp.csr_matrix((np.ones(12, dtype=np.float32), (np.arange(12) // 4, items)), shape=(3, 40))
        rows, at = (torch.from_numpy(a) for a in distinct(40, x.indices))
        first, last = (Read.of(ours.net[i].weight, rows) for i in (0, -1))
        opt.zero_grad()
        given = SparseRows.from_csr(x, torch.device("cpu"))
        hidden = ours.net[1:-1](ours.net[0].over(first.block, SparseRows(at, given.offsets, given.values)))
        ((hidden @ last.block.index_select(0, at).T) ** 2).sum().backward()
        moved = opt.step({opt.name(ours.net[0].weight): first, opt.name(ours.net[-1].weight): last})
        assert all(torch.equal(m.rows, rows) for m in moved.values())

        theirs.zero_grad(set_to_none=True)
        layer = theirs.net[0]
        hidden = theirs.net[1:-1](torch.nn.functional.embedding_bag(
            given.indices, layer.weight, given.offsets, mode="sum", per_sample_weights=given.values, sparse=True)
            + layer.bias)
        out = torch.nn.functional.embedding(given.indices, theirs.net[-1].weight, sparse=True)
        ((hidden @ out.T) ** 2).sum().backward()
        with torch.no_grad():
            for p in tables:
                grad = p.grad.coalesce()
                p.grad = torch.sparse_coo_tensor(grad.indices(), grad.values() + 0.1 * p[grad.indices()[0]], p.shape,
                                                 check_invariants=True)
        sparse.step()
        dense.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_low_rank_ease_is_ease_where_the_rank_holds_the_data():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((60, 12)) < 0.3).astype(np.float32))
    v, s = factors(x, rank=11)
    x = sp.csr_matrix(x)
    dense = np.asarray(x @ ease_weights(x, 5.0))
    low = LowRankScorer(v, s, 5.0)(x)
    if np.linalg.matrix_rank(x.toarray()) <= 11:
        np.testing.assert_allclose(low, dense, atol=1e-3)


def test_validation_and_test_users_are_a_seeded_sample():
    truth = sp.csr_matrix(np.eye(50, dtype=np.float32))
    a, b = sample_rows(truth, 20, seed=3), sample_rows(truth, 20, seed=3)
    assert (np.diff(a.indptr) > 0).sum() == 20 and (a != b).nnz == 0
    assert sample_rows(truth, 50) is truth


def test_the_shop_log_has_its_structure():
    log = shop_log(ShopShape(2000, 500, 30_000), seed=1)
    assert log.equals(shop_log(ShopShape(2000, 500, 30_000), seed=1))
    assert abs(len(log) - 30_000) < 2000 and log["user_id"].nunique() == 2000
    counts = log["item_id"].value_counts().to_numpy()
    assert counts[0] > 20 * np.median(counts)  # power-law popularity
    per_user = log.groupby("user_id").size()
    assert per_user.min() >= 3 and per_user.max() > 10 * per_user.median()  # power-law activity
    assert (log.groupby("user_id")["timestamp"].diff().dropna() >= 0).all()


@pytest.mark.parametrize("family", ["cfgan", "seqgan"])
def test_an_epoch_on_200k_items_stays_within_a_memory_cap(family):
    # 12,000 users x 200,000 items: dense, one float32 users x items matrix is 9.6 GB, over the
    # 6 GB cap (CFGAN's item tables and their optimiser states take about 2 GB of it); the default
    # CFGAN trains on sampled outputs, the sequence family on a sampled softmax (with
    # model.output=full its first step fails to allocate its positions x items logits under the
    # cap), and validation ranks blocks of users.
    script = textwrap.dedent("""
        import json, resource, sys
        import numpy as np, scipy.sparse as sp
        cap = 6 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        from genrec.config import load_config
        from genrec.dataset import Dataset, Events
        from genrec.models.families import make_model
        rng = np.random.default_rng(0)
        users, items = 12_000, 200_000
        user = np.repeat(np.arange(users), 12)
        item = rng.integers(0, items, len(user))
        split = np.where(rng.random(len(user)) < 0.1, 1, 0)
        data = Dataset(np.array([f"u{u}" for u in range(users)], dtype=object),
                       np.array([f"i{i}" for i in range(items)], dtype=object),
                       Events.build(user, item, None, split), "cap", validation_users=1000)
        cfg = load_config("default", ["model.name=" + sys.argv[1], "model.blend=none", "train.epochs=1",
                                      "train.device=cpu"])
        model = make_model(cfg).fit(data)
        top, _ = model.recommend(np.arange(3), k=5)
        print(json.dumps({"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                          "epochs": len(model.training_.history), "top": top.tolist()}))
    """)
    done = subprocess.run([sys.executable, "-c", script, family], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # The sequence family's history holds one epoch of each of its two stages.
    assert out["epochs"] == {"cfgan": 1, "seqgan": 2}[family] and np.array(out["top"]).shape == (3, 5)
    assert out["rss"] < 6 * 2**30
