"""The one training loop: early stopping on validation, patience that waits for popularity, the
refit, checkpoints, and a resume after SIGKILL that ends where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from genrec.config import load_config
from genrec.dataset import TRAIN, VALIDATION
from genrec.errors import UsageError
from genrec.models.families import make_model
from genrec.crashpoints import ENV as CRASH_AT
from genrec.training import FitOptions
from modeldata import checkerboard, dataset

TESTS = Path(__file__).resolve().parent
FAST = ["model.hidden_g=64", "model.hidden_d=16", "model.input_dropout=0.5", "model.lr_g=1e-2", "model.lr_d=1e-3",
        "model.zr_coefficient=0.1", "model.reg_g=0", "train.device=cpu"]


def cfgan(*overrides: str):
    return make_model(load_config("tiny", [*FAST, *overrides]))


def test_early_stops_on_validation_and_keeps_the_best_epoch():
    data = checkerboard(3, validation=True)
    model = cfgan("train.epochs=400", "train.patience=10").fit(data)
    loop = model.training_
    assert len(loop.history) < 400  # stopped early
    assert loop.best_epoch == max(loop.history, key=lambda h: (h["val_ndcg@20"], -h["epoch"]))["epoch"]
    assert len(loop.history) - loop.best_epoch == 10
    assert {"d_loss", "g_loss", "val_ndcg@20", "seconds"} <= set(loop.history[0])
    assert model.chosen_params_ == {"epochs": loop.best_epoch}


def test_a_fit_kept_only_above_an_earlier_score_stops_once_its_patience_passes_below_it():
    """`FitOptions.to_beat` (the adversarial stage's: the cross-entropy stage's best): patience
    counts from the last epoch above both it and the fit's own best. Nothing scores above 1.0, so
    the fit stops as soon as its patience counts (3 epochs, once it ranks above popularity), where
    on its own it goes on gaining; its own best epoch is still reported."""
    data = checkerboard(3, validation=True)
    alone = cfgan("train.epochs=400", "train.patience=3").fit(data).training_
    held = cfgan("train.epochs=400", "train.patience=3").fit(data, FitOptions(to_beat=1.0)).training_
    above_popularity = next(r["epoch"] for r in alone.history if r["val_ndcg@20"] > alone.floor)
    assert len(alone.history) > above_popularity + 3 and len(held.history) == max(3, above_popularity)
    assert held.history == [{**r, "seconds": h["seconds"]} for r, h in zip(alone.history, held.history)]
    assert held.best_epoch == max(held.history, key=lambda h: (h["val_ndcg@20"], -h["epoch"]))["epoch"]


def test_patience_in_interactions_waits_fewer_epochs_on_a_larger_split(caplog):
    """`train.patience_interactions` of three training splits' interactions: the loop waits 3
    epochs, not the 10 of `train.patience`; the smaller of the two governs."""
    caplog.set_level("INFO", logger="genrec.training")  # the CLI's tests may have left "genrec" at WARNING
    data = checkerboard(3, validation=True)
    n = data.train.nnz
    model = cfgan("train.epochs=400", "train.patience=10", f"train.patience_interactions={3 * n}").fit(data)
    loop = model.training_
    assert len(loop.history) - loop.best_epoch == 3
    assert f"patience 3 epochs (train.patience_interactions={3 * n:,} over {n:,}" in caplog.text
    assert load_config("tiny", [f"train.patience_interactions={100 * n}"]).train.patience_for(n) == 10
    assert load_config("tiny", ["train.patience_interactions=0"]).train.patience_for(10**9) == 10
    assert load_config("default").train.patience_for(10**9) == 1


def test_patience_waits_until_the_model_beats_popularity(caplog):
    """Every validation item is the most popular item its user has not seen, so popularity's
    NDCG@20 is 1 and nothing beats it: patience never starts counting and every epoch runs (an
    untrained generator's flat score would stop it at epoch 3 with patience 2)."""
    rng = np.random.default_rng(0)
    rows = [(u, 0, TRAIN) for u in range(10, 30)] + [(u, 0, VALIDATION) for u in range(10)]
    for u in range(30):
        rows += [(u, int(i), TRAIN) for i in rng.choice(np.arange(1, 12), size=3, replace=False)]
    model = cfgan("model.lr_g=1e-12", "train.epochs=8", "train.patience=2").fit(dataset(rows, 30, 12))
    assert model.training_.floor == 1.0
    assert len(model.training_.history) == 8
    assert "never ranked better than popularity" in caplog.text


def test_refit_trains_again_on_train_and_validation():
    data = checkerboard(3, validation=True)
    plain = cfgan("train.epochs=30", "train.patience=5").fit(data)
    refit = cfgan("train.epochs=30", "train.patience=5", "train.refit=true").fit(data)
    best = plain.training_.best_epoch
    assert refit.training_.best_epoch == best and refit.chosen_params_ == {"epochs": best, "refit": True}
    users = np.arange(data.n_users)
    assert not np.allclose(refit.score_users(users), plain.score_users(users))
    # What it keeps is what training from scratch on train + validation for the chosen epochs gives...
    merged = dataset([(int(u), int(i), TRAIN) for u, i in zip(*data.known.nonzero())], data.n_users, data.n_items)
    again = cfgan(f"train.epochs={best}").fit(merged)
    np.testing.assert_allclose(refit.score_users(users), again.score_users(users), rtol=1e-5, atol=1e-6)
    # ...and its selection run is the plain run, draw for draw.
    assert [r["val_ndcg@20"] for r in refit.training_.history] == [r["val_ndcg@20"] for r in plain.training_.history]
    # The blend chooses its weight with the generator validation chose, not the refitted one.
    np.testing.assert_array_equal(refit.validation_scorer(data)(data.histories(users, ("train",))),
                                  plain.score(data.histories(users, ("train",))))


def test_checkpoint_describes_itself(tmp_path):
    data = checkerboard(2, validation=True)
    path = tmp_path / "ckpt.pt"
    meta = {"digest": "abc", "data_fingerprint": data.fingerprint, "config": {"train": {"epochs": 5}}}
    model = cfgan("train.epochs=5", "train.checkpoint_every=2").fit(data, FitOptions(checkpoint=path, meta=meta))
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["meta"] == meta and ckpt["phase"] == "select" and ckpt["epoch"] == 5
    assert {"generator", "discriminator", "opt_g", "opt_d", "rng", "torch_rng"} <= set(ckpt["trainer"])
    assert ckpt["best_epoch"] == model.training_.best_epoch and ckpt["best_score"] == model.training_.best_score
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    with pytest.raises(UsageError, match="other data or another config"):
        cfgan("train.epochs=5").fit(data, FitOptions(checkpoint=path, resume=True, meta={"digest": "other"}))


KILLED_FIT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from genrec.training import FitOptions
    from modeldata import checkerboard
    from test_training import cfgan, SETTINGS
    cfgan(*SETTINGS).fit(checkerboard(3, validation=True),
                         FitOptions(checkpoint=Path(sys.argv[2]), meta={"digest": "d"}))
""")
SETTINGS = ("train.epochs=40", "train.patience=40", "train.checkpoint_every=3", "train.refit=true")


@pytest.mark.parametrize("kill_at", [9, 40])
def test_a_fit_killed_by_sigkill_resumes_to_the_uninterrupted_model(tmp_path, kill_at):
    """A fit in another process sends itself SIGKILL right after the checkpoint of epoch `kill_at`
    (9: mid-selection; 40: selection over, the refit to come); resumed here from that checkpoint it
    ends with the same weights and curve as a fit that was never interrupted."""
    data = checkerboard(3, validation=True)
    path = tmp_path / "checkpoint.pt"
    env = dict(os.environ, **{CRASH_AT: f"checkpoint:{kill_at}"})
    proc = subprocess.run([sys.executable, "-c", KILLED_FIT, str(TESTS), str(path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert torch.load(path, weights_only=False)["epoch"] == kill_at
    resumed = cfgan(*SETTINGS).fit(data, FitOptions(checkpoint=path, resume=True, meta={"digest": "d"}))
    whole = cfgan(*SETTINGS).fit(data)
    assert resumed.training_.resumed_at == kill_at
    assert [r["val_ndcg@20"] for r in resumed.training_.history] == [r["val_ndcg@20"] for r in whole.training_.history]
    for (name, a), (_, b) in zip(resumed.generator_.state_dict().items(), whole.generator_.state_dict().items()):
        assert torch.equal(a, b), name
