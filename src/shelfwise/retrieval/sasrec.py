"""SASRec: next-item prediction with a causal self-attention Transformer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self, get_args

import numpy as np
import torch

from shelfwise._internal.artifacts import read_array, write_array
from shelfwise._internal.sequences import Sequences
from shelfwise.contracts import FloatArray, IntArray
from shelfwise.errors import ArtifactError, ConfigError, DataError, EmptyDataError, NotReadyError
from shelfwise.retrieval._sasrec_net import (
    EpochReport,
    LossName,
    NegativeSampling,
    SASRecNet,
    TrainConfig,
    TrainingData,
    TrainingSummary,
    ValidationData,
    right_aligned,
    train,
    trim_padding,
)
from shelfwise.retrieval.base import Histories, as_user_histories
from shelfwise.retrieval.shared import check_ordered, check_train, read_params, write_params

logger = logging.getLogger(__name__)

_WEIGHTS_FOLDER = "weights"
_SCORE_BATCH = 1024


class SASRecRecommender:
    """Self-attentive sequential recommendation (SASRec) trained with a softmax loss.

    The newest `max_len` items of a user's sequence go through item + learned
    positional embeddings, `blocks` pre-norm causal self-attention blocks (`heads`
    heads, point-wise feed-forward, dropout, layer norm) and a final layer norm. The
    score of item j after the sequence is <h_last, e_j>, where e_j is the item's
    input embedding: the embedding table doubles as the output layer.

    Training predicts, at every position of every training sequence, the next item:

    - `loss="softmax"`: cross-entropy over all items.
    - `loss="sampled_softmax"`: cross-entropy over the positive and `negatives` items
      drawn once per batch and shared by all its positions; `negative_sampling=
      "popularity"` draws them by target frequency and subtracts log(negatives · q)
      from their logits (logQ correction). Accidental hits are masked.
    - `loss="bce"`: the original paper's binary cross-entropy, one uniform negative
      per positive (kept for comparison; about 40% worse on Beauty).

    Early stopping ranks validation users' held-out items over all items (their
    history excluded) after every epoch, keeps the epoch with the best NDCG@10 and
    stops after `patience` epochs without a gain, or after `epochs` epochs. Both count
    epochs, never seconds, so training is deterministic for a given seed and thread
    count on any machine, busy or idle (a wall-clock budget trained the same data 7
    or 12 epochs depending on load: issue 14). `time_budget_s` is only a safety cap
    against a run that would never end: when it triggers (checked after every batch)
    the best epoch so far is kept, `summary.stopped_by` is "time_budget" and a warning
    says the model is not reproducible. Runs on CPU with `num_threads` torch threads.

    Seen items are not masked by `score`; the caller masks them (`recommend_top_k`).

    Inputs:
        train / histories: `UserHistories` whose `sequences` (item_index, oldest
            first, one row per user) the model reads; `fit_sequences` and
            `score_sequences` take the `Sequences` alone.
        n_items: size of the item space; item_index i is embedding row i + 1 and
            row 0 is padding.
        valid / valid_targets (optional): validation users' input sequences and the
            one item_index each should rank first.

    Relations:
        Matrix recommenders (`ItemKNNRecommender`, EASE, ALS) see a bag of items; this
        model sees their order and weighs recent items through attention. Training
        needs torch; loading and scoring need torch and numpy only (weights are plain
        `.npy` files, nothing pickled).

    References:
        Kang, McAuley. "Self-Attentive Sequential Recommendation." ICDM 2018.
        Klenitskiy, Vasilev. "Turning Dross Into Gold Loss: is BERT4Rec really better
        than SASRec?" RecSys 2023 (softmax losses for SASRec).
        Petrov, Macdonald. "gSASRec: Reducing Overconfidence in Sequential
        Recommendation Trained with Negative Sampling." RecSys 2023.
        Yi et al. "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
        Recommendations." RecSys 2019 (logQ correction).

    Example:
        >>> from shelfwise._internal.sequences import Sequences
        >>> model = SASRecRecommender(max_len=4, hidden=8, epochs=1, negatives=2)
        >>> model.fit_sequences(Sequences.from_rows([[0, 1, 2], [1, 2, 0]]), n_items=3)
        >>> model.score_sequences(Sequences.from_rows([[0, 1], []])).shape
        (2, 3)

        The `Recommender` protocol's `fit` / `score` read the same sequences from
        `UserHistories` (the rows fix the item space).
    """

    name: str = "sasrec"

    def __init__(
        self,
        max_len: int = 50,
        hidden: int = 64,
        blocks: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        loss: LossName = "sampled_softmax",
        negatives: int = 256,
        negative_sampling: NegativeSampling = "uniform",
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int | None = 10,
        time_budget_s: float | None = 7200.0,
        seed: int = 42,
        num_threads: int = 2,
        train_workers: int = 1,
    ) -> None:
        """Create an unfitted model.

        Args:
            max_len: newest items of a sequence the model reads.
            hidden: embedding and hidden size; a multiple of `heads`.
            blocks: number of self-attention blocks.
            heads: attention heads per block.
            dropout: dropout rate on embeddings, attention weights and block outputs.
            loss: "softmax" (all items), "sampled_softmax" or "bce".
            negatives: negatives per batch for "sampled_softmax".
            negative_sampling: "uniform" or "popularity" (with logQ correction).
            epochs: most passes over the training sequences: the stop without
                validation data, the bound with it. Amazon Beauty keeps epoch 9 of 14
                (patience 5), so 100 leaves room to spare.
            batch_size: sequences per optimiser step.
            learning_rate: AdamW learning rate.
            weight_decay: AdamW decoupled weight decay.
            patience: epochs without a better validation NDCG@10 before stopping;
                None never stops early. Only used with validation data.
            time_budget_s: safety cap in seconds (None = none): training that reaches
                it stops with a warning, and the model then depends on the machine's
                speed. The default (2 hours, ~7x a Beauty fit on one thread) only
                stops runs that would otherwise go on for much longer.
            seed: seeds torch (weights, dropout) and numpy (shuffling, negatives).
            num_threads: torch CPU threads while fitting and scoring.
            train_workers: more than 1 trains data-parallel on Ray Train, that many
                workers with `num_threads` threads each (`_sasrec_ray`; not the
                one-worker model, and no `time_budget_s` cap); 1 trains here.

        Raises:
            ConfigError: a value out of range.
        """
        self.max_len = max_len
        self.hidden = hidden
        self.blocks = blocks
        self.heads = heads
        self.dropout = dropout
        self.loss: LossName = loss
        self.negatives = negatives
        self.negative_sampling: NegativeSampling = negative_sampling
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.time_budget_s = time_budget_s
        self.seed = seed
        self.num_threads = num_threads
        self.train_workers = train_workers
        self._check_params()
        self.n_items: int | None = None
        self.net: SASRecNet | None = None
        self.summary: TrainingSummary | None = None

    def _check_params(self) -> None:
        positive = {
            "max_len": self.max_len,
            "hidden": self.hidden,
            "blocks": self.blocks,
            "heads": self.heads,
            "negatives": self.negatives,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "num_threads": self.num_threads,
            "train_workers": self.train_workers,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"sasrec: {key} must be >= 1, got {value}")
        if self.hidden % self.heads:
            raise ConfigError(
                f"sasrec: hidden ({self.hidden}) must be a multiple of heads ({self.heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"sasrec: dropout must be in [0, 1), got {self.dropout}")
        if self.loss not in get_args(LossName):
            raise ConfigError(
                f"sasrec: loss must be one of {', '.join(get_args(LossName))}, got {self.loss!r}"
            )
        if self.negative_sampling not in get_args(NegativeSampling):
            raise ConfigError(
                "sasrec: negative_sampling must be uniform or popularity, "
                f"got {self.negative_sampling!r}"
            )
        if not self.learning_rate > 0.0 or self.weight_decay < 0.0:
            raise ConfigError(
                f"sasrec: learning_rate must be > 0 and weight_decay >= 0, got "
                f"{self.learning_rate} and {self.weight_decay}"
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"sasrec: patience must be >= 1 or None, got {self.patience}")
        if self.time_budget_s is not None and not self.time_budget_s >= 0.0:
            raise ConfigError(
                f"sasrec: time_budget_s must be >= 0 or None, got {self.time_budget_s}"
            )

    def fit(
        self,
        train: Histories,
        *,
        valid: Sequences | None = None,
        valid_targets: IntArray | None = None,
        progress: Callable[[EpochReport], None] | None = None,
    ) -> None:
        """Learn next-item prediction from the training users' ordered items.

        The rows of `train` are checked and fix the item space; the model learns from
        `train.sequences`. Other arguments as in `fit_sequences`.

        Raises:
            EmptyDataError: the rows hold no interaction, or no sequence has two items.
            DataError: no sequences, negative weights, or see `fit_sequences`.
        """
        rows = check_train(train, model=self.name)
        sequences = as_user_histories(train).ordered(model=self.name)
        self.fit_sequences(
            sequences, rows.shape[1], valid=valid, valid_targets=valid_targets, progress=progress
        )

    def fit_sequences(
        self,
        sequences: Sequences,
        n_items: int,
        *,
        valid: Sequences | None = None,
        valid_targets: IntArray | None = None,
        progress: Callable[[EpochReport], None] | None = None,
    ) -> None:
        """Learn next-item prediction from every position of the training sequences.

        Args:
            sequences: training sequences (item_index, oldest first).
            n_items: size of the item space.
            valid: validation users' input sequences (usually their training
                sequences); enables early stopping on NDCG@10.
            valid_targets: (valid.n_users,) the held-out item_index of each valid user.
            progress: called with an `EpochReport` after every epoch.

        Raises:
            EmptyDataError: no sequence has two items (nothing to predict).
            DataError: item indices outside [0, n_items), or `valid` and
                `valid_targets` not given together or of different lengths.
        """
        if n_items < 1:
            raise EmptyDataError(f"sasrec: n_items must be >= 1, got {n_items}")
        _check_items(sequences, n_items, what="sequences")
        lengths = sequences.lengths()
        users = np.flatnonzero(lengths >= 2).astype(np.int64)
        if users.size == 0:
            raise EmptyDataError(
                "sasrec: no training sequence has two items, so there is no next item "
                "to learn; check the split (leave-last-out needs >= 3 events per user)"
            )
        data = TrainingData(
            inputs=right_aligned(
                sequences.indptr, sequences.items, users, self.max_len, drop_last=1
            ),
            targets=right_aligned(sequences.indptr, sequences.items, users, self.max_len + 1)[
                :, 1:
            ],
            item_counts=np.bincount(sequences.items, minlength=n_items).astype(np.int64),
        )
        valid_data = self._validation_data(valid, valid_targets, n_items)
        config = TrainConfig(
            loss=self.loss,
            negatives=self.negatives,
            negative_sampling=self.negative_sampling,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patience=self.patience,
            time_budget_s=self.time_budget_s,
        )
        logger.info(
            "sasrec: training on %d sequences (%d targets), %d items, %s validation users",
            users.size,
            int((data.targets != 0).sum()),
            n_items,
            "no" if valid_data is None else str(valid_data.targets.size),
        )
        architecture: dict[str, Any] = {
            "n_items": n_items,
            "max_len": self.max_len,
            "hidden": self.hidden,
            "blocks": self.blocks,
            "heads": self.heads,
            "dropout": self.dropout,
        }
        if self.train_workers > 1:
            from shelfwise.retrieval._sasrec_ray import train_on_ray

            state, summary = train_on_ray(
                architecture, data, config, seed=self.seed, valid=valid_data,
                workers=self.train_workers, num_threads=self.num_threads,
            )  # fmt: skip
            net = SASRecNet(**architecture)
            net.load_state_dict(state)
            net.eval()
        else:
            with _torch_threads(self.num_threads):
                torch.manual_seed(self.seed)
                net = SASRecNet(**architecture)
                summary = train(
                    net, data, config, seed=self.seed, valid=valid_data, progress=progress
                )
        self.n_items = n_items
        self.net = net
        self.summary = summary
        logger.info(
            "sasrec: kept epoch %d of %d (stopped by %s) after %.1f s",
            summary.best_epoch,
            summary.epochs_run,
            summary.stopped_by,
            summary.train_seconds,
        )

    def _validation_data(
        self, valid: Sequences | None, valid_targets: IntArray | None, n_items: int
    ) -> ValidationData | None:
        if valid is None and valid_targets is None:
            return None
        if valid is None or valid_targets is None:
            raise DataError(
                "sasrec: pass valid and valid_targets together (validation input "
                "sequences and one held-out item per user), or neither"
            )
        targets = np.asarray(valid_targets, dtype=np.int64)
        if targets.shape != (valid.n_users,):
            raise DataError(
                f"sasrec: valid_targets has shape {targets.shape}; expected "
                f"({valid.n_users},), one item per validation sequence"
            )
        _check_items(valid, n_items, what="valid")
        if targets.size and (targets.min() < 0 or targets.max() >= n_items):
            raise DataError(f"sasrec: valid_targets hold item indices outside [0, {n_items})")
        # Users without history have nothing to encode: leave them out of the metric.
        # The rest go shortest first, so evaluation batches carry little padding.
        lengths = valid.lengths()
        users = np.flatnonzero(lengths > 0).astype(np.int64)
        users = users[np.argsort(lengths[users], kind="stable")]
        if users.size == 0:
            return None
        kept = valid.take(users)
        return ValidationData(
            inputs=right_aligned(kept.indptr, kept.items, np.arange(users.size), self.max_len),
            targets=targets[users],
            seen_indptr=kept.indptr,
            seen_items=kept.items,
        )

    def score(self, histories: Histories) -> FloatArray:
        """Dense (batch, n_items) float32 next-item scores of the batch's ordered items.

        Raises:
            NotReadyError: the model is not fitted.
            DataError: no sequences, rows of another item count, or see
                `score_sequences`.
        """
        _, n_items = self._fitted()
        return self.score_sequences(check_ordered(histories, n_items, model=self.name))

    def score_sequences(self, sequences: Sequences) -> FloatArray:
        """Dense (batch, n_items) float32 next-item scores; empty sequences score 0.

        Raises:
            NotReadyError: the model is not fitted.
            DataError: item indices outside [0, n_items).
        """
        net, n_items = self._fitted()
        _check_items(sequences, n_items, what="sequences")
        scores = np.zeros((sequences.n_users, n_items), dtype=np.float32)
        # Shortest first, so each batch is trimmed to little more than its own length.
        lengths = sequences.lengths()
        users = np.flatnonzero(lengths > 0).astype(np.int64)
        users = users[np.argsort(lengths[users], kind="stable")]
        net.eval()
        with _torch_threads(self.num_threads), torch.no_grad():
            for start in range(0, users.size, _SCORE_BATCH):
                chunk = users[start : start + _SCORE_BATCH]
                rows = right_aligned(sequences.indptr, sequences.items, chunk, self.max_len)
                scores[chunk] = net.score_last(torch.from_numpy(trim_padding(rows))).numpy()
        return scores

    def save(self, folder: Path) -> None:
        """Write `params.json` and one `.npy` per weight tensor under `weights/`."""
        net, n_items = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        state = net.state_dict()
        for key, tensor in state.items():
            write_array(folder / _WEIGHTS_FOLDER / f"{key}.npy", tensor.detach().numpy())
        summary = self.summary
        write_params(
            folder,
            self.name,
            {
                **self._params(),
                "n_items": n_items,
                "tensors": sorted(state),
                "training": None
                if summary is None
                else {
                    "best_epoch": summary.best_epoch,
                    "best_valid_ndcg": summary.best_valid_ndcg,
                    "epochs_run": summary.epochs_run,
                    "stopped_by": summary.stopped_by,
                    # False when the safety cap (time_budget_s) ended training: the
                    # same seed may then give another model on another machine
                    "reproducible": summary.stopped_by != "time_budget",
                    "train_seconds": summary.train_seconds,
                },
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a model written by `save` (no pickle: plain `.npy` arrays).

        Raises:
            ArtifactError: missing files, another model's folder, or weights whose
                names or shapes do not match the saved parameters.
        """
        params = read_params(folder, cls.name)
        try:
            model = cls(**{key: params[key] for key in _PARAM_NAMES})
            n_items = int(params["n_items"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{folder}/params.json is incomplete or invalid ({exc}); retrain the model"
            ) from None
        net = SASRecNet(
            n_items, model.max_len, model.hidden, model.blocks, model.heads, model.dropout
        )
        expected = net.state_dict()
        if sorted(expected) != sorted(params.get("tensors", [])):
            raise ArtifactError(
                f"{folder}/params.json lists other tensors than this code's SASRec "
                "network; retrain the model with this version"
            )
        state: dict[str, torch.Tensor] = {}
        for key, reference in expected.items():
            path = folder / _WEIGHTS_FOLDER / f"{key}.npy"
            try:
                array = read_array(path)
            except FileNotFoundError:
                raise ArtifactError(f"{path} is missing; retrain the model") from None
            if tuple(array.shape) != tuple(reference.shape) or array.dtype != np.float32:
                raise ArtifactError(
                    f"{path} holds {array.dtype} {tuple(array.shape)}, expected float32 "
                    f"{tuple(reference.shape)}: the folder is damaged, retrain the model"
                )
            state[key] = torch.from_numpy(array)
        net.load_state_dict(state)
        net.eval()
        model.net = net
        model.n_items = n_items
        return model

    def _params(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _PARAM_NAMES}

    def _fitted(self) -> tuple[SASRecNet, int]:
        if self.net is None or self.n_items is None:
            raise NotReadyError(f"{self.name} model is not fitted; call fit() or load() first")
        return self.net, self.n_items


_PARAM_NAMES = (
    "max_len",
    "hidden",
    "blocks",
    "heads",
    "dropout",
    "loss",
    "negatives",
    "negative_sampling",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "patience",
    "time_budget_s",
    "seed",
    "num_threads",
)


def _check_items(sequences: Sequences, n_items: int, *, what: str) -> None:
    items = sequences.items
    if items.size and (int(items.min()) < 0 or int(items.max()) >= n_items):
        raise DataError(
            f"sasrec: {what} hold item indices in [{int(items.min())}, {int(items.max())}] "
            f"but the item space is [0, {n_items}); build sequences with the model's item map"
        )


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch CPU threads, restoring the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


__all__ = ["EpochReport", "SASRecRecommender", "TrainingSummary"]
