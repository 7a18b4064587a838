"""SASRec on tiny sequences whose next item is known exactly, plus its contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shelfwise._internal.sequences import Sequences
from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval import SequentialRecommender, load_recommender, recommender_class
from shelfwise.retrieval._sasrec_net import EpochReport
from shelfwise.retrieval.sasrec import SASRecRecommender

N_ITEMS = 10


def cyclic(n_users: int = 40, length: int = 6, n_items: int = N_ITEMS) -> Sequences:
    """User u's items are u, u+1, u+2, ... (mod n_items): the next item is always +1."""
    return Sequences.from_rows([[(u + t) % n_items for t in range(length)] for u in range(n_users)])


def tiny(**overrides: object) -> SASRecRecommender:
    settings: dict[str, object] = {
        "max_len": 8,
        "hidden": 16,
        "blocks": 1,
        "dropout": 0.0,
        "negatives": 5,
        "epochs": 40,
        "batch_size": 64,
        "learning_rate": 1e-2,
        "num_threads": 1,
    }
    settings.update(overrides)
    return SASRecRecommender(**settings)  # type: ignore[arg-type]


def next_item_accuracy(model: SASRecRecommender, sequences: Sequences) -> float:
    scores = model.score_sequences(sequences)
    truth = np.array([(row[-1] + 1) % N_ITEMS for row in map(sequences.row, range(len(scores)))])
    return float((scores.argmax(axis=1) == truth).mean())


@pytest.fixture(scope="module")
def _fitted_once() -> SASRecRecommender:
    model = tiny()
    model.fit_sequences(cyclic(), N_ITEMS)
    return model


@pytest.fixture
def fitted(_fitted_once: SASRecRecommender, tmp_path: Path) -> SASRecRecommender:
    """A private copy of the module's fitted model (through save/load)."""
    _fitted_once.save(tmp_path / "shared")
    return SASRecRecommender.load(tmp_path / "shared")


@pytest.mark.parametrize(
    ("loss", "sampling"),
    [
        ("sampled_softmax", "uniform"),
        ("sampled_softmax", "popularity"),
        ("softmax", "uniform"),
        ("bce", "uniform"),
    ],
)
def test_learns_the_cyclic_successor(loss: str, sampling: str) -> None:
    model = tiny(loss=loss, negative_sampling=sampling)
    model.fit_sequences(cyclic(), N_ITEMS)
    # Users the model never saw, with other lengths and offsets: the answer is last + 1.
    unseen = Sequences.from_rows([[3, 4], [7, 8, 9, 0, 1], [5], [9, 0, 1, 2]])
    assert next_item_accuracy(model, unseen) == 1.0
    assert next_item_accuracy(model, cyclic()) >= 0.9


def test_implements_the_sequential_protocol(fitted: SASRecRecommender) -> None:
    assert isinstance(fitted, SequentialRecommender)
    assert recommender_class("sasrec") is SASRecRecommender


def test_scores_shape_dtype_finite_and_empty_rows_zero(fitted: SASRecRecommender) -> None:
    scores = fitted.score_sequences(Sequences.from_rows([[1, 2, 3], [], list(range(10)) * 3]))
    assert scores.shape == (3, N_ITEMS)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert (scores[1] == 0.0).all()
    assert fitted.score_sequences(Sequences.from_rows([])).shape == (0, N_ITEMS)


def test_reads_only_the_newest_max_len_items(fitted: SASRecRecommender) -> None:
    newest = [2, 3, 4, 5, 6, 7, 8, 9]  # max_len = 8
    long = Sequences.from_rows([[0, 1, *newest], newest])
    scores = fitted.score_sequences(long)
    np.testing.assert_array_equal(scores[0], scores[1])


def test_save_load_gives_identical_scores(fitted: SASRecRecommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    loaded = load_recommender("sasrec", tmp_path / "model")
    assert isinstance(loaded, SASRecRecommender)
    batch = cyclic(n_users=7, length=4)
    np.testing.assert_array_equal(loaded.score_sequences(batch), fitted.score_sequences(batch))
    params = json.loads((tmp_path / "model" / "params.json").read_text())
    assert params["name"] == "sasrec"
    assert params["n_items"] == N_ITEMS
    suffixes = {path.suffix for path in (tmp_path / "model").rglob("*") if path.is_file()}
    assert suffixes == {".json", ".npy"}  # nothing pickled


def test_load_refuses_a_damaged_folder(fitted: SASRecRecommender, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    next((tmp_path / "model" / "weights").glob("*.npy")).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        SASRecRecommender.load(tmp_path / "model")
    with pytest.raises(ArtifactError, match="no saved sasrec"):
        SASRecRecommender.load(tmp_path / "nothing")


def test_same_seed_same_scores_other_seed_other_scores() -> None:
    sequences = cyclic()
    runs = []
    for seed in (7, 7, 8):
        model = tiny(epochs=3, dropout=0.2, seed=seed)
        model.fit_sequences(sequences, N_ITEMS)
        runs.append(model.score_sequences(sequences))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


class FakeClock:
    """A clock that advances `step` seconds at every reading (a slow or busy machine)."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _fit_with_clock(
    monkeypatch: pytest.MonkeyPatch, step: float, **overrides: object
) -> SASRecRecommender:
    from shelfwise.retrieval import _sasrec_net

    monkeypatch.setattr(_sasrec_net, "_clock", FakeClock(step))
    train = cyclic(length=5)
    valid_targets = np.array([(u + 5) % N_ITEMS for u in range(train.n_users)])
    model = tiny(**{"epochs": 12, "patience": 2, "dropout": 0.2, "seed": 3, **overrides})
    model.fit_sequences(train, N_ITEMS, valid=train, valid_targets=valid_targets)
    return model


def test_same_seed_same_model_on_a_fast_or_a_slow_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 14: a wall-clock budget trained the same data and seed 7 or 12 epochs
    # depending on load. Epochs and patience decide now: a machine whose clock says
    # every batch took 5 minutes (an hour in all) trains the very same model.
    fast = _fit_with_clock(monkeypatch, step=0.001)
    slow = _fit_with_clock(monkeypatch, step=300.0)
    assert fast.summary is not None
    assert slow.summary is not None
    assert slow.summary.train_seconds > 3600 > fast.summary.train_seconds
    assert slow.summary.stopped_by == fast.summary.stopped_by != "time_budget"
    assert slow.summary.epochs_run == fast.summary.epochs_run
    assert slow.summary.best_epoch == fast.summary.best_epoch
    for (key, left), right in zip(
        fast._fitted()[0].state_dict().items(), slow._fitted()[0].state_dict().values(), strict=True
    ):
        assert torch.equal(left, right), key
    batch = cyclic(n_users=7, length=4)
    np.testing.assert_array_equal(fast.score_sequences(batch), slow.score_sequences(batch))


def test_time_budget_is_a_reported_safety_cap(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level("WARNING", logger="shelfwise.retrieval.sasrec"):
        model = _fit_with_clock(monkeypatch, step=300.0, epochs=10_000, time_budget_s=1000.0)
    summary = model.summary
    assert summary is not None
    assert summary.stopped_by == "time_budget"
    assert summary.epochs_run < 10_000
    assert "safety cap time_budget_s=1000 ended training in epoch" in caplog.text
    assert "depends on this machine's speed and load" in caplog.text
    model.save(tmp_path / "model")
    training = json.loads((tmp_path / "model" / "params.json").read_text())["training"]
    assert training["stopped_by"] == "time_budget"
    assert training["reproducible"] is False


def test_time_budget_stops_training() -> None:
    model = tiny(epochs=10_000, time_budget_s=0.0)
    model.fit_sequences(cyclic(), N_ITEMS)
    assert model.summary is not None
    assert model.summary.stopped_by == "time_budget"
    assert model.summary.epochs_run == 1


def test_early_stopping_keeps_the_best_epoch_and_reports_progress() -> None:
    train = cyclic(length=5)
    valid_targets = np.array([(u + 5) % N_ITEMS for u in range(train.n_users)])
    reports: list[EpochReport] = []
    model = tiny(epochs=30, patience=3, learning_rate=3e-2)
    model.fit_sequences(
        train, N_ITEMS, valid=train, valid_targets=valid_targets, progress=reports.append
    )
    summary = model.summary
    assert summary is not None
    assert [report.epoch for report in reports] == list(range(1, summary.epochs_run + 1))
    best = max(report.valid_ndcg or 0.0 for report in reports)
    assert summary.best_valid_ndcg == pytest.approx(best)
    assert reports[summary.best_epoch - 1].valid_ndcg == pytest.approx(best)
    if summary.stopped_by == "patience":
        assert summary.epochs_run - summary.best_epoch == 3
    # The kept weights are the best epoch's: recompute its NDCG@10 from the scores.
    scores = model.score_sequences(train)
    scores[np.repeat(np.arange(train.n_users), train.lengths()), train.items] = -np.inf
    rank = (scores > scores[np.arange(train.n_users), valid_targets][:, None]).sum(axis=1)
    ndcg = np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean()
    assert ndcg == pytest.approx(best, abs=1e-6)


def test_restores_the_torch_thread_count() -> None:
    before = torch.get_num_threads()
    tiny(epochs=1, num_threads=1 if before != 1 else 2).fit_sequences(cyclic(), N_ITEMS)
    assert torch.get_num_threads() == before


def test_refuses_bad_input() -> None:
    with pytest.raises(NotReadyError, match="not fitted"):
        tiny().score_sequences(cyclic())
    with pytest.raises(DataError, match=r"outside|item space"):
        tiny().fit_sequences(cyclic(), n_items=5)
    with pytest.raises(EmptyDataError, match="two items"):
        tiny().fit_sequences(Sequences.from_rows([[1], [2], []]), N_ITEMS)
    with pytest.raises(DataError, match="together"):
        tiny().fit_sequences(cyclic(), N_ITEMS, valid=cyclic())
    with pytest.raises(ConfigError, match="multiple of heads"):
        SASRecRecommender(hidden=10, heads=3)
    with pytest.raises(ConfigError, match="loss must be"):
        SASRecRecommender(loss="hinge")  # type: ignore[arg-type]


def test_full_softmax_loss_matches_torch_cross_entropy() -> None:
    from shelfwise.retrieval._sasrec_net import _FullSoftmaxCrossEntropy

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(11, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 3, 3, 10, 5, 1, 9])
    expected = torch.nn.functional.cross_entropy(hidden @ weights.T, targets, reduction="sum")
    expected_grads = torch.autograd.grad(expected, (hidden, weights))
    loss = _FullSoftmaxCrossEntropy.apply(hidden, weights, targets)
    grads = torch.autograd.grad(loss, (hidden, weights))
    torch.testing.assert_close(loss, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
