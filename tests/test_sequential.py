"""Order: the temporal protocols (leave-last-out, a global time cutoff) on hand-made logs with known
answers, and the item-to-item transitions baseline on a catalogue where order is the only signal."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from genrec import preprocessing
from genrec.config import load_config
from genrec.errors import DataError, UsageError
from genrec.evaluation import evaluate_scores
from genrec.models.families import make_model
from modeldata import dataset

T0 = 1_600_000_000


def _log(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([(u, i, 1.0, T0 + t) for u, i, t in rows], columns=["user_id", "item_id", "rating", "timestamp"])


def _splits(data) -> dict[str, dict[str, list[str]]]:
    """user -> split name -> that user's items in time order."""
    out: dict[str, dict[str, list[str]]] = {}
    e = data.events
    for u, i, s in zip(e.user, e.item, e.split):
        out.setdefault(str(data.user_ids[u]), {}).setdefault(("train", "validation", "test")[s], []).append(
            str(data.item_ids[i]))
    return out


def _prepare(rows, *overrides: str):
    cfg = load_config("tiny", list(overrides))
    return preprocessing.prepare(preprocessing.to_implicit(_log(rows), cfg.data, cfg.prepare), cfg.prepare)


LOG = [
    ("a", "x", 1), ("a", "y", 3), ("a", "z", 2), ("a", "w", 3),  # y and w at the same second: file order
    ("a", "x", 5),                                              # x again, later
    ("b", "p", 1), ("b", "q", 2),                               # too short to split
    ("c", "p", 4), ("c", "q", 1), ("c", "r", 9),
]


def test_leave_last_out_by_time_ties_in_file_order_repeats_at_their_first():
    data = _prepare(LOG, "prepare.split=leave-last-out", "prepare.repeats=first")
    assert _splits(data) == {
        "a": {"train": ["x", "z"], "validation": ["y"], "test": ["w"]},  # x stays where it was first chosen
        "b": {"train": ["p", "q"]},
        "c": {"train": ["q"], "validation": ["p"], "test": ["r"]},
    }
    assert data.histories(np.array([0])).row(0).tolist() == [data.item_ids.tolist().index(i) for i in ("x", "z", "y")]


def test_leave_last_out_with_repeats_at_their_latest():
    data = _prepare(LOG, "prepare.split=leave-last-out")
    assert _splits(data)["a"] == {"train": ["z", "y"], "validation": ["w"], "test": ["x"]}


def test_every_repeat_kept_with_repeats_all():
    data = _prepare(LOG + [("c", "r", 9)], "prepare.split=leave-last-out", "prepare.repeats=all")
    assert _splits(data) == {
        "a": {"train": ["x", "z", "y"], "validation": ["w"], "test": ["x"]},  # the re-buy of x is held out
        "b": {"train": ["p", "q"]},
        "c": {"train": ["q"], "validation": ["p"], "test": ["r"]},  # the same row twice counts once
    }
    assert data.histories(np.array([0]), splits=("train", "validation", "test")).row(0).tolist() == [
        data.item_ids.tolist().index(i) for i in ("x", "z", "y", "w", "x")]


def rebuys(*overrides: str):
    """Ten users who each buy milk, then an item of their own, then milk again (the held-out item)."""
    rows = [(f"u{u}", item, t) for u in range(10) for item, t in (("milk", 1), (f"own{u}", 2), (f"more{u}", 3),
                                                                      ("milk", 4))]
    return _prepare(rows, "prepare.split=leave-last-out", "prepare.repeats=all", *overrides)


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_whether_what_users_have_is_ranked_is_a_config_choice(exclude_seen, tmp_path):
    from genrec import pipeline
    from genrec.serving import ServingModel

    overrides = ["model.name=pop", f"prepare.exclude_seen={str(exclude_seen).lower()}"]
    data, cfg = rebuys(*overrides), load_config("tiny", overrides)
    model = pipeline.train(data, cfg)
    # Milk is the most bought item and every user's test item, and every user already has it.
    assert pipeline.evaluate(model, data, cfg).metrics["ndcg@5"] == (0.0 if exclude_seen else 1.0)
    served = ServingModel.load(ServingModel.build(model, data, "pop").save(tmp_path / "served"))
    answer = served.predict(pd.DataFrame({"user_id": ["u3"]}), k=1)
    assert (answer["items"][0] == ["milk"]) is not exclude_seen


def test_a_global_time_cutoff():
    cutoff = pd.Timestamp(T0 + 3, unit="s").isoformat()
    data = _prepare(LOG, "prepare.split=time", f"prepare.cutoff={cutoff}")
    assert _splits(data) == {
        "a": {"train": ["z"], "test": ["y", "w", "x"]},  # x at its latest (t=5); one item before: no validation
        "b": {"train": ["p"], "validation": ["q"]},
        "c": {"train": ["q"], "test": ["p", "r"]},
    }


def test_temporal_protocols_need_timestamps_and_a_cutoff():
    rows = _log(LOG).assign(timestamp=None)
    cfg = load_config("tiny", ["prepare.split=leave-last-out"])
    with pytest.raises(DataError, match="needs a timestamp"):
        preprocessing.prepare(preprocessing.to_implicit(rows, cfg.data, cfg.prepare), cfg.prepare)
    with pytest.raises(UsageError, match="needs a cutoff"):
        load_config("tiny", ["prepare.split=time"])
    with pytest.raises(UsageError, match="ISO date"):
        load_config("tiny", ["prepare.split=time", "prepare.cutoff=last tuesday"])


def test_given_splits_carve_validation_from_each_users_last_training_item():
    train = _log([("a", "x", 1), ("a", "y", 3), ("a", "z", 2), ("b", "p", 1)])
    test = _log([("a", "p", 9), ("b", "x", 9)])
    data = preprocessing.from_split(train, test, load_config("tiny", ["prepare.split=leave-last-out"]).prepare)
    assert _splits(data) == {"a": {"train": ["x", "z"], "validation": ["y"], "test": ["p"]},
                             "b": {"train": ["p"], "test": ["x"]}}  # one training item: nothing to carve


def cyclic(n_items: int = 12, n_users: int = 48, seed: int = 0):
    """A catalogue in a circle: each user took 3 to 8 consecutive items k, k+1, ... in that order, the
    last two held out as validation and test. Only order tells the next item from the one before the run."""
    rng = np.random.default_rng(seed)
    rows, times = [], []
    for u in range(n_users):
        start, length = int(rng.integers(n_items)), int(rng.integers(1, 7))
        for j in range(length + 2):  # train..., validation, test
            rows.append((u, (start + j) % n_items, 0 if j < length else j - length + 1))
            times.append(T0 + 10 * u + j)
    return dataset(rows, n_users, n_items, times)


def test_transitions_find_the_next_item_where_order_is_the_only_signal():
    data = cyclic()
    cfg = load_config("tiny", ["model.name=transitions"])
    transitions = make_model(cfg).fit(data)
    assert evaluate_scores(transitions.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"] == 1.0
    # EASE sees sets: the item after a run and the one before it co-occur with it alike.
    ease = make_model(load_config("tiny", ["model.name=ease"])).fit(data)
    assert evaluate_scores(ease.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"] < 0.75


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_the_sequence_family_finds_the_next_item_where_order_is_the_only_signal(encoder):
    data = cyclic()
    cfg = load_config("tiny", ["model.name=seqgan", f"model.encoder={encoder}", "model.dim=32", "model.layers=1",
                               "model.adversarial=false", "train.epochs=150", "train.patience=30"])
    model = make_model(cfg).fit(data)
    assert evaluate_scores(model.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"] >= 0.95
    # A new history, in order, gets the item after its last one.
    items, _ = model.recommend_histories(data.histories(np.array([0, 1])), k=1)
    assert items[:, 0].tolist() == [(data.histories(np.array([u])).row(0)[-1] + 1) % data.n_items for u in (0, 1)]


def test_the_encoder_computes_torchs_layers_with_dropout_of_its_own():
    """The Transformer's layers as torch's own TransformerEncoder computes them (causal, pre-norm),
    through the fused attention (no dropout) and through the written-out one (dropout of 0); with
    p = 0.2, 51 of 256 byte values drop a unit and the others are scaled to keep the mean."""
    from genrec.models.seqgan.networks import Dropout, SequenceEncoder

    cfg = _seqgan("model.layers=2", "model.heads=4").model.section()
    encoder = SequenceEncoder(30, cfg, seed=0).eval()
    seq = torch.randint(1, 31, (5, 9))
    seq[2, 4:] = 0  # right-padded
    # Positions count back from each row's last item: 8, 7, ..., 0, and 3, 2, 1, 0 (then padding) in row 2.
    places = torch.tensor([list(range(8, -1, -1))] * 5)
    places[2] = torch.tensor([3, 2, 1, 0, 0, 0, 0, 0, 0])
    x = F.embedding(seq, encoder.items.table(), padding_idx=0) * cfg.dim**0.5 + encoder.positions(places)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(9)
    expected = encoder.norm(encoder.encoder(x, mask=causal, is_causal=True))
    torch.testing.assert_close(encoder(seq), expected)
    torch.testing.assert_close(encoder(seq, Dropout(0.0, np.random.default_rng(0))), expected)

    dropout = Dropout(0.2, np.random.default_rng(0))
    kept = dropout(torch.ones(200_000))
    assert (dropout.cut, dropout.scale) == (51, 256 / 205)
    torch.testing.assert_close(kept.unique(), torch.tensor([0.0, 256 / 205]))
    assert abs(float((kept == 0).float().mean()) - 51 / 256) < 0.005 and abs(float(kept.mean()) - 1) < 0.01
    again = Dropout(0.2, np.random.default_rng(0))(torch.ones(200_000))
    torch.testing.assert_close(kept, again)  # the same seed, the same masks


def test_the_blocked_losses_and_the_grouped_positions_are_the_plain_ones():
    """The full softmax's cross-entropy and the adversarial step a block at a time: torch's autograd
    over the whole matrices, losses and gradients (blocks of 3 rows here, so that a block ends inside
    the positions); a batch encoded in groups of similar length: the states and next items of the
    batch padded as one."""
    from genrec.dataset import Histories
    from genrec.models.seqgan import trainer
    from genrec.models.seqgan.networks import Positions, SequenceEncoder, padded

    cfg = _seqgan().model.section()
    encoder = SequenceEncoder(12, cfg, seed=0)
    states, target = torch.randn(10, cfg.dim, requires_grad=True), torch.tensor([0, 3, 11, 5, 5, 2, 9, 1, 0, 7])
    expected = F.cross_entropy(encoder.logits(states), target)
    expected.backward()
    want = states.grad.clone(), encoder.items.ids.weight.grad.clone()
    states.grad = encoder.items.ids.weight.grad = None
    block = trainer.BLOCK_BYTES
    trainer.BLOCK_BYTES = 3 * 12 * 4
    try:
        loss = trainer.next_item_loss(encoder, states, target, None)
    finally:
        trainer.BLOCK_BYTES = block
    loss.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(states.grad, want[0])
    torch.testing.assert_close(encoder.items.ids.weight.grad, want[1])

    # The adversarial step's losses and gradients, a block at a time, against autograd's over the
    # whole matrices (as the step over drawn items computes them, every item drawn, no shift).
    g_states, g_table, d_states, d_table = (torch.randn(shape, requires_grad=True) for shape in
                                            [(10, 8), (12, 8), (10, 8), (12, 8)])
    chosen = torch.softmax(g_states @ g_table.T, dim=1)
    d = d_states @ d_table.T
    d_loss = F.softplus(-d.gather(1, target[:, None]).squeeze(1)).mean() + \
        (chosen.detach() * F.softplus(d)).sum(1).mean()
    ce = F.cross_entropy(g_states @ g_table.T, target)
    adversarial = (chosen * F.softplus(-d.detach())).sum(1).mean()
    want = [*torch.autograd.grad(ce + 0.3 * adversarial, [g_states, g_table]),
            *torch.autograd.grad(d_loss, [d_states, d_table])]
    trainer.BLOCK_BYTES = 3 * 12 * 4
    try:
        got = trainer.full_adversarial_gradients(g_states.detach(), g_table.detach(), d_states.detach(),
                                                 d_table.detach(), target, 0.3)
    finally:
        trainer.BLOCK_BYTES = block
    assert got[:3] == pytest.approx([ce.item(), d_loss.item(), adversarial.item()], abs=1e-5)
    for mine, expected in zip(got[3:], want):
        torch.testing.assert_close(mine, expected)

    histories = Histories.from_lists([[1, 2], [3, 4, 5, 6, 7, 8, 9], [0], [10, 11, 0, 1], [2, 3, 4]], 12)
    at = Positions.of(histories, max_len=5, groups=3, device=torch.device("cpu"))
    # Groups by length: {[0], [1, 2]}, {[2, 3, 4], [10, 11, 0, 1]}, {the 7 items, their last 6}.
    assert [x.shape[1] for x in at.inputs] == [1, 3, 5]
    seq = torch.from_numpy(padded(histories, 6)[0])
    real = seq[:, 1:] > 0
    with torch.no_grad():
        plain = encoder.eval()(seq[:, :-1] * real)[real]  # each history's last item only a target
        grouped = at.states(encoder, None)
    order = [0, 9, 10, 6, 7, 8, 1, 2, 3, 4, 5]  # the plain batch's positions in the groups' order
    torch.testing.assert_close(grouped, plain[order])
    torch.testing.assert_close(at.next_items, (seq[:, 1:][real] - 1)[order])


def test_sampled_softmax_over_every_item_is_the_full_softmax():
    """Drawing every item (negatives = items: no shift) gives the full cross-entropy exactly; the
    model trained on 4 drawn items of 12 (both stages) still finds the next item."""
    from genrec.models.seqgan.networks import SequenceEncoder
    from genrec.models.seqgan.trainer import candidate_logits

    cfg = _seqgan().model.section()
    encoder = SequenceEncoder(12, cfg, seed=0)
    states, target = torch.randn(7, cfg.dim), torch.tensor([0, 3, 11, 5, 5, 2, 9])
    full = F.cross_entropy(encoder.logits(states), target)
    logits, column = candidate_logits(encoder, states, target, torch.randperm(12))
    torch.testing.assert_close(F.cross_entropy(logits, column), full)
    assert cfg.sampled(12) is False and _seqgan("model.negatives=2").model.section().sampled(12) is True

    data = cyclic()
    model = make_model(_seqgan("model.output=sampled", "model.negatives=4", "train.epochs=150",
                               "train.patience=30")).fit(data)
    assert evaluate_scores(model.score_users, data.known, data.test, ks=(1,)).metrics["ndcg@1"] >= 0.95


def test_a_sampled_step_trains_only_the_item_rows_it_reads():
    """With a sampled softmax a step reads its positions' items and the drawn ones as a block of the
    item table: the same loss as reading the whole table, the same weights after a first step as
    AdamW over every parameter (which moves no row without a gradient yet; on the table's rows with
    SparseAdam's eps, added before the bias correction), and no other row moves."""
    from genrec.models.seqgan.trainer import SeqTrainer

    data = cyclic(n_items=200, n_users=60)
    cfg = _seqgan("model.output=sampled", "model.negatives=5").model.section()
    histories, cpu = data.histories(splits=("train",)), torch.device("cpu")
    rowwise, whole = SeqTrainer(cfg, histories, cpu, 0), SeqTrainer(cfg, histories, cpu, 0)
    assert rowwise.rowwise
    table = whole.encoder.items.ids.weight
    others = [p for p in whole.encoder.parameters() if p is not table]
    whole.rowwise, whole.opt = False, torch.optim.AdamW(
        [{"params": others}, {"params": [table], "eps": 1e-8 / (1 - 0.999) ** 0.5}], lr=cfg.lr, weight_decay=0.0)
    first = np.arange(0, 60, 2)
    assert rowwise.step(first)[0] == pytest.approx(whole.step(first)[0], rel=1e-6)
    for name, values in whole.encoder.state_dict().items():
        torch.testing.assert_close(rowwise.encoder.state_dict()[name], values, rtol=1e-5, atol=1e-6, msg=name)

    second = np.arange(1, 60, 2)
    drawn_from = rowwise.rng.bit_generator.state
    _, _, read = rowwise._batch(second)
    rowwise.rng.bit_generator.state = drawn_from
    table = rowwise.encoder.items.ids.weight
    before = table.detach().clone()
    rowwise.step(second)
    moved = torch.nonzero((table.detach() != before).any(dim=1)).flatten()
    assert 0 < len(moved) and set(moved.tolist()) <= set(read.tolist())
    # What it reads: padding, the users' items and at most the 5 drawn ones (of 200 items).
    theirs = set((histories.take(second).items + 1).tolist())
    assert 0 in read.tolist() and theirs <= set(read.tolist()) and len(set(read.tolist()) - theirs - {0}) <= 5


def _seqgan(*overrides: str):
    return load_config("tiny", ["model.name=seqgan", "model.dim=32", "model.layers=1", *overrides])


def _weights(model) -> dict[str, np.ndarray]:
    return model.get_state().arrays


def test_the_adversarial_stage_is_kept_only_where_validation_improves():
    data = cyclic()
    twin = make_model(_seqgan("train.epochs=30", "train.patience=30", "model.adversarial=false")).fit(data)
    # Cross-entropy alone ranks every validation item first: nothing is left to improve, so the
    # adversarial stage runs and is dropped, and the model is its cross-entropy twin.
    model = make_model(_seqgan("train.epochs=30", "train.patience=30")).fit(data)  # the default: adversarial
    assert model.training_.best_score == twin.training_.best_score == 1.0
    assert model.chosen_params_ == {"epochs": twin.chosen_params_["epochs"], "adversarial_epochs": 0}
    for name, values in _weights(twin).items():
        np.testing.assert_array_equal(_weights(model)[name], values)
        np.testing.assert_array_equal(model.twin_.state_dict()[name.removeprefix("encoder.")].numpy(), values)

    # Two epochs of cross-entropy leave room: the adversarial stage (which keeps the cross-entropy
    # term) goes on from there and is kept.
    short = make_model(_seqgan("train.epochs=2")).fit(data)
    first = make_model(_seqgan("train.epochs=2", "model.adversarial=false")).fit(data)
    assert short.chosen_params_["adversarial_epochs"] >= 1
    assert short.training_.best_score > first.training_.best_score
    assert len(short.training_.history) == 4 and "d_loss" in short.training_.history[-1]


def test_both_stages_resume_from_their_checkpoints(tmp_path):
    from genrec.training import FitOptions

    data = cyclic()
    cfg = _seqgan("train.epochs=4")
    options = FitOptions(checkpoint=tmp_path / "checkpoint.pt", meta={"digest": "d"})
    done = make_model(cfg).fit(data, options)
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "adversarial-checkpoint.pt"}
    epochs: list[int] = []
    again = make_model(cfg).fit(data, FitOptions(checkpoint=options.checkpoint, meta=options.meta, resume=True,
                                                 on_epoch=lambda epoch, record: epochs.append(epoch)))
    assert epochs == [] and again.chosen_params_ == done.chosen_params_  # nothing trained twice
    for name, values in _weights(done).items():
        np.testing.assert_array_equal(_weights(again)[name], values)


def test_a_table_averaged_at_the_rows_it_moves_is_averaged_as_a_whole():
    """The moving average of an item table moved a block of rows at a time, brought up to date row
    by row as they move, equals the average of the whole table taken at every step."""
    from torch import nn

    from genrec.models.average import Average
    from genrec.models.rows import Moved

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.table, self.linear = nn.Parameter(torch.randn(10, 3)), nn.Linear(3, 2)

    torch.manual_seed(0)
    rowwise, whole = Net(), Net()
    whole.load_state_dict(rowwise.state_dict())
    lazy, every_step = Average(rowwise, 0.8, tables=("table",)), Average(whole, 0.8)
    first = {k: v.clone() for k, v in rowwise.state_dict().items()}
    assert all(torch.equal(lazy.weights()[k], first[k]) for k in first)  # before any step: the weights
    for _ in range(7):
        rows = torch.randperm(10)[:3].sort().values
        before, change = rowwise.table.detach()[rows].clone(), torch.randn(3, 3)
        with torch.no_grad():
            for net in (rowwise, whole):
                net.table[rows] += change
            for p, q in zip(rowwise.linear.parameters(), whole.linear.parameters()):
                change_p = torch.randn_like(p)
                p += change_p
                q += change_p
        lazy.step({"table": Moved(rows, before, rowwise.table.detach()[rows].clone())})
        every_step.step()
    for name, values in every_step.weights().items():
        torch.testing.assert_close(lazy.weights()[name], values)
    # The first step's average is that step's weights (the bias correction), not a pull towards the start.
    single = Average(whole, 0.9)
    single.step()
    torch.testing.assert_close(single.weights()["table"], whole.table.detach())


def test_a_version_registered_before_positions_counted_back_scores_as_it_did():
    """A saved state without the word on positions counted from each history's first item, as every
    version registered before it: loaded under today's default, it scores as it was trained."""
    data = cyclic()
    cfg = _seqgan("train.epochs=3", "model.adversarial=false", "model.positions=from_start")
    model = make_model(cfg).fit(data)
    state = model.get_state()
    assert state.meta.pop("positions") == "from_start"
    today = _seqgan().model.section()
    assert today.positions == "from_end"
    loaded = type(model).from_state(today, state)
    histories = data.histories(np.arange(10))
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))
    state.meta["positions"] = "from_end"  # the word matters: the same weights read the other way score otherwise
    assert not np.allclose(type(model).from_state(today, state).score(histories), model.score(histories))
