"""The SASRec network (a causal Transformer over item sequences) and its training loop.

Private to `shelfwise.retrieval.sasrec`, which owns the public model class, input
checks and save/load. Everything here works on *embedding rows*: item_index i is row
i + 1 and row 0 is padding. Sequences are right-aligned in a (batch, max_len) array
(padding on the left), so the newest item always sits at the last position and
carries the same positional embedding in training and at scoring time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shelfwise.contracts import IntArray

logger = logging.getLogger("shelfwise.retrieval.sasrec")

LossName = Literal["softmax", "sampled_softmax", "bce"]
NegativeSampling = Literal["uniform", "popularity"]

_EVAL_BATCH = 1024
_EVAL_K = 10
_BUCKET_BATCHES = 32
# The safety cap's clock, a module attribute so tests can replace it. Nothing but the
# cap (and the reported seconds) reads it: epochs and patience decide when training
# stops, so the same data and seed give the same model on a busy or an idle machine.
_clock = time.perf_counter


class _Block(nn.Module):
    """One pre-norm Transformer block: causal self-attention, then a point-wise FFN."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout_rate = dropout
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.feed_forward_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.feed_forward_in = nn.Linear(hidden, hidden)
        self.feed_forward_out = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states: Tensor, allowed: Tensor) -> Tensor:
        """(batch, T, hidden) -> same; `allowed` (batch, 1, T, T) is True where q sees k."""
        batch, length, hidden = states.shape
        head_dim = hidden // self.heads
        qkv = self.qkv.forward(self.attention_norm.forward(states))
        query, key, value = qkv.view(batch, length, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=allowed,
            dropout_p=self.dropout_rate if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        states = states + self.dropout.forward(self.attention_out.forward(attended))
        inner = F.relu(self.feed_forward_in.forward(self.feed_forward_norm.forward(states)))
        inner = self.feed_forward_out.forward(self.dropout.forward(inner))
        return states + self.dropout.forward(inner)


class SASRecNet(nn.Module):
    """Item + learned positional embeddings, `blocks` causal blocks, a final layer norm.

    The item embedding doubles as the output layer: the score of item row r after a
    prefix is <final hidden state, item_embedding[r]>.
    """

    def __init__(
        self, n_items: int, max_len: int, hidden: int, blocks: int, heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.hidden = hidden
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([_Block(hidden, heads, dropout) for _ in range(blocks)])
        self.final_norm = nn.LayerNorm(hidden, eps=1e-8)
        self._init_weights()

    def _init_weights(self) -> None:
        # Small normal weights (BERT-style): N(0, 1) embeddings make the shared output
        # layer's initial logits huge and slow the softmax losses down.
        for name, parameter in self.named_parameters():
            if "norm" in name:
                continue
            if name.endswith("bias"):
                nn.init.zeros_(parameter)
            else:
                nn.init.normal_(parameter, mean=0.0, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def encode(self, rows: Tensor) -> Tensor:
        """Hidden states (batch, T, hidden) of right-aligned item rows (batch, T ≤ max_len)."""
        _, length = rows.shape
        present = rows != 0
        positions = torch.arange(self.max_len - length, self.max_len, device=rows.device)
        states = self.item_embedding.forward(rows) * math.sqrt(self.hidden)
        states = states + self.position_embedding.forward(positions)
        states = self.embedding_dropout.forward(states) * present.unsqueeze(-1)
        causal = torch.ones(length, length, dtype=torch.bool, device=rows.device).tril()
        # A query sees earlier, non-padding keys, and always itself: padding rows then
        # keep one allowed key instead of a softmax over nothing (NaN).
        eye = torch.eye(length, dtype=torch.bool, device=rows.device)
        allowed = (causal & (present.unsqueeze(1) | eye)).unsqueeze(1)
        # Padding states never reach a real position (their keys are masked, and the
        # feed-forward is point-wise), so they need no zeroing between blocks.
        for block in self.blocks:
            states = block(states, allowed)
        normed: Tensor = self.final_norm.forward(states)
        return normed

    def item_weights(self) -> Tensor:
        """(n_items, hidden) output embeddings, item_index order (padding row dropped)."""
        return self.item_embedding.weight[1:]

    def score_last(self, rows: Tensor) -> Tensor:
        """(batch, n_items) scores of the next item after each row's newest item."""
        last = self.encode(rows)[:, -1, :]
        return last @ self.item_weights().T


def right_aligned(
    indptr: IntArray, items: IntArray, users: IntArray, max_len: int, *, drop_last: int = 0
) -> IntArray:
    """(len(users), max_len) embedding rows of each user's newest items, padding left.

    `drop_last` items at the end of each sequence are left out first (1 builds the
    training inputs, whose targets are the sequence shifted by one).
    """
    out = np.zeros((users.size, max_len), dtype=np.int64)
    for slot, user in enumerate(users):
        end = int(indptr[user + 1]) - drop_last
        start = max(int(indptr[user]), end - max_len)
        if end > start:
            out[slot, max_len - (end - start) :] = items[start:end] + 1
    return out


def trim_padding(rows: IntArray) -> IntArray:
    """Drop the leading columns that are padding in every row (a view, no copy)."""
    filled = (rows != 0).any(axis=0)
    return rows[:, int(np.argmax(filled)) :] if filled.any() else rows[:, -1:]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model class validates them)."""

    loss: LossName
    negatives: int
    negative_sampling: NegativeSampling
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int | None
    time_budget_s: float | None


@dataclass(frozen=True)
class TrainingData:
    """Right-aligned training inputs and next-item targets (embedding rows, 0 = none)."""

    inputs: IntArray  # (n_sequences, max_len)
    targets: IntArray  # (n_sequences, max_len)
    item_counts: IntArray  # (n_items,) occurrences in the training sequences (popularity)


@dataclass(frozen=True)
class ValidationData:
    """Users to rank on: right-aligned inputs, one target item_index, seen items.

    Users are best ordered by sequence length, so that each evaluation batch can be
    trimmed to its longest sequence.
    """

    inputs: IntArray  # (n_users, max_len) embedding rows
    targets: IntArray  # (n_users,) item_index
    seen_indptr: IntArray  # (n_users + 1,) CSR of each user's whole history
    seen_items: IntArray


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did; passed to the progress callback and logged.

    `loss` is the mean training loss per target; `valid_ndcg` is NDCG@10 on the
    validation users (seen items excluded), None without validation data;
    `seconds` counts from the start of training.
    """

    epoch: int
    loss: float
    valid_ndcg: float | None
    seconds: float
    best_epoch: int


@dataclass(frozen=True)
class TrainingSummary:
    """How training ended: the kept epoch, why it stopped, and every epoch's report."""

    best_epoch: int
    best_valid_ndcg: float | None
    epochs_run: int
    stopped_by: Literal["epochs", "patience", "time_budget"]
    train_seconds: float
    history: tuple[EpochReport, ...]


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `hidden @ weightsᵀ` against `targets`, softmax over all items.

    Same value and gradients as `F.cross_entropy(hidden @ weights.T, targets,
    reduction="sum")`, but
    the (N, n_items) logits are turned into probabilities in place and reused by the
    backward pass: on CPU this memory traffic, not the matmuls, is most of the cost
    of a full softmax over ~12k items (about 25% faster at hidden 64).
    """

    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weights: Tensor, targets: Tensor) -> Tensor:
        logits = hidden @ weights.T
        target_logits = logits.gather(1, targets.unsqueeze(1))
        top = logits.max(dim=1, keepdim=True).values
        probabilities = logits.sub_(top).exp_()
        sums = probabilities.sum(dim=1, keepdim=True)
        probabilities.div_(sums)
        ctx.save_for_backward(hidden, weights, targets, probabilities)
        return (sums.log() + top - target_logits).sum()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        hidden, weights, targets, probabilities = ctx.saved_tensors
        # d loss / d logits = softmax - onehot; the saved buffer is used only once.
        rows = torch.arange(probabilities.shape[0])
        probabilities[rows, targets] -= 1.0
        grad_logits = probabilities.mul_(grad)
        return grad_logits @ weights, grad_logits.T @ hidden, None


def _loss(
    net: SASRecNet,
    inputs: Tensor,
    targets: Tensor,
    config: TrainConfig,
    rng: np.random.Generator,
    log_q: Tensor | None,
    sampling_p: np.ndarray[Any, np.dtype[np.float64]] | None,
) -> Tensor:
    """Next-item loss summed over every non-padding position of the batch."""
    states = net.encode(inputs)
    present = targets != 0
    hidden = states[present]  # (N, hidden)
    positive_rows = targets[present]  # (N,)
    weights = net.item_embedding.weight
    n_items = weights.shape[0] - 1
    if config.loss == "softmax":
        # torch types Function.apply without annotations; it returns forward's Tensor.
        loss: Tensor = _FullSoftmaxCrossEntropy.apply(  # type: ignore[no-untyped-call]
            hidden, weights[1:], positive_rows - 1
        )
        return loss
    if config.loss == "bce":
        # The original SASRec objective: one uniform negative per positive.
        negative_rows = torch.from_numpy(rng.integers(1, n_items + 1, size=hidden.shape[0]))
        positive = (hidden * weights[positive_rows]).sum(-1)
        negative = (hidden * weights[negative_rows]).sum(-1)
        return F.binary_cross_entropy_with_logits(
            positive, torch.ones_like(positive), reduction="sum"
        ) + F.binary_cross_entropy_with_logits(
            negative, torch.zeros_like(negative), reduction="sum"
        )
    # Sampled softmax: `negatives` items shared by the whole batch.
    if sampling_p is None:
        sampled = rng.integers(0, n_items, size=config.negatives)
    else:
        sampled = rng.choice(n_items, size=config.negatives, p=sampling_p)
    negative_rows = torch.from_numpy(sampled + 1)
    positive = (hidden * weights[positive_rows]).sum(-1, keepdim=True)
    negative = hidden @ weights[negative_rows].T  # (N, negatives)
    if log_q is not None:
        # logQ correction (Bengio & Senecal; Yi et al. 2019): popular items are drawn
        # more often, so their sampled logits are discounted by log(negatives · q).
        negative = negative - log_q[sampled]
    # A negative equal to the positive is an accidental hit, not a negative.
    negative = negative.masked_fill(negative_rows.unsqueeze(0) == positive_rows.unsqueeze(1), -1e9)
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long), reduction="sum")


def evaluate_ndcg(net: SASRecNet, valid: ValidationData) -> float:
    """Mean NDCG@10 of the one target per user, full ranking, seen items excluded."""
    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, valid.targets.size, _EVAL_BATCH):
            stop = min(start + _EVAL_BATCH, valid.targets.size)
            scores = net.score_last(torch.from_numpy(trim_padding(valid.inputs[start:stop])))
            lo, hi = int(valid.seen_indptr[start]), int(valid.seen_indptr[stop])
            counts = np.diff(valid.seen_indptr[start : stop + 1])
            seen_rows = np.repeat(np.arange(stop - start), counts)
            scores[
                torch.from_numpy(seen_rows), torch.from_numpy(valid.seen_items[lo:hi])
            ] = -torch.inf
            targets = torch.from_numpy(valid.targets[start:stop])
            target_scores = scores.gather(1, targets.unsqueeze(1))
            rank = torch.count_nonzero(scores > target_scores, dim=1)  # 0 = first
            hit = (rank < _EVAL_K) & torch.isfinite(target_scores.squeeze(1))
            gains = 1.0 / torch.log2(rank.to(torch.float64) + 2.0)
            total += float(gains[hit].sum())
    return total / max(valid.targets.size, 1)


def _length_bucketed_batches(
    lengths: IntArray, batch_size: int, rng: np.random.Generator
) -> list[IntArray]:
    """Shuffled batches of sequences of similar length.

    Sequences are shuffled, cut into buckets of `_BUCKET_BATCHES` batches, sorted by
    length inside each bucket and batched; the batches are then shuffled. Batches
    stay random samples of the data, but trimming each batch to its longest sequence
    then removes most padding (Beauty: median length 6, max_len 50), which is most of
    the cost on CPU.
    """
    order = rng.permutation(lengths.size)
    bucket = batch_size * _BUCKET_BATCHES
    batches: list[IntArray] = []
    for start in range(0, order.size, bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, chunk.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def train(
    net: SASRecNet,
    data: TrainingData,
    config: TrainConfig,
    *,
    seed: int,
    valid: ValidationData | None = None,
    progress: Callable[[EpochReport], None] | None = None,
    after_backward: Callable[[SASRecNet], None] | None = None,
) -> TrainingSummary:
    """Fit `net` in place; with `valid`, the best epoch's weights are the ones kept.

    `after_backward` runs between each backward pass and its optimiser step (the Ray
    Train path averages the gradients of its workers there: `_sasrec_ray`).

    Stops after `config.epochs`, or after `config.patience` epochs without a better
    validation NDCG@10: both count epochs, so a seed gives the same model whatever the
    machine's speed or load. `config.time_budget_s` is only a safety cap against a
    run that would never end: checked after every batch, it ends the epoch in progress
    there (which is then evaluated) and logs a warning, since the result then depends
    on the machine (`stopped_by == "time_budget"`).
    """
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=config.learning_rate,
        betas=(0.9, 0.98),
        weight_decay=config.weight_decay,
        fused=True,  # one kernel for all parameters: ~3x faster steps on CPU
    )
    log_q: Tensor | None = None
    sampling_p: np.ndarray[Any, np.dtype[np.float64]] | None = None
    if config.loss == "sampled_softmax" and config.negative_sampling == "popularity":
        counts = data.item_counts.astype(np.float64) + 1.0  # +1: every item can be drawn
        sampling_p = counts / counts.sum()
        log_q = torch.from_numpy(np.log(config.negatives * sampling_p).astype(np.float32))

    started = _clock()
    history: list[EpochReport] = []
    best_epoch, best_ndcg = 0, -math.inf
    best_state: dict[str, Tensor] | None = None
    stopped_by: Literal["epochs", "patience", "time_budget"] = "epochs"
    lengths = (data.targets != 0).sum(axis=1)
    # Length-bucketed batches hold from ~2 to ~50 targets per sequence. Dividing each
    # batch's summed loss by one constant (the mean number of targets per batch), not
    # by its own count, keeps every target's weight equal, as with random batches;
    # a per-batch mean would weigh the targets of short sequences up to 25x more.
    targets_per_batch = float(lengths.sum()) * config.batch_size / max(lengths.size, 1)
    for epoch in range(1, config.epochs + 1):
        net.train()
        loss_sum, n_targets, out_of_time = 0.0, 0, False
        for batch in _length_bucketed_batches(lengths, config.batch_size, rng):
            targets = trim_padding(data.targets[batch])
            inputs = data.inputs[batch][:, -targets.shape[1] :]
            loss = _loss(
                net,
                torch.from_numpy(inputs),
                torch.from_numpy(targets),
                config,
                rng,
                log_q,
                sampling_p,
            )
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss / targets_per_batch)
            if after_backward is not None:
                after_backward(net)
            optimizer.step()
            loss_sum += float(loss.detach())
            n_targets += int(lengths[batch].sum())
            if config.time_budget_s is not None and _clock() - started >= config.time_budget_s:
                out_of_time = True
                break
        valid_ndcg = evaluate_ndcg(net, valid) if valid is not None else None
        if valid_ndcg is None or valid_ndcg > best_ndcg:
            best_epoch = epoch
            best_ndcg = valid_ndcg if valid_ndcg is not None else best_ndcg
            if valid is not None:
                best_state = {
                    key: value.detach().clone() for key, value in net.state_dict().items()
                }
        report = EpochReport(
            epoch=epoch,
            loss=loss_sum / max(n_targets, 1),
            valid_ndcg=valid_ndcg,
            seconds=_clock() - started,
            best_epoch=best_epoch,
        )
        history.append(report)
        logger.info(
            "sasrec epoch %d: loss %.4f, valid ndcg@10 %s, %.1f s (best epoch %d)",
            report.epoch,
            report.loss,
            "-" if valid_ndcg is None else f"{valid_ndcg:.4f}",
            report.seconds,
            best_epoch,
        )
        if progress is not None:
            progress(report)
        if out_of_time:
            stopped_by = "time_budget"
            logger.warning(
                "sasrec: the safety cap time_budget_s=%s ended training in epoch %d of at "
                "most %d (%.0f s); the kept model depends on this machine's speed and load, "
                "so the same seed may give another one elsewhere. Raise time_budget_s (or "
                "set it to null) and bound training with epochs and patience instead",
                f"{config.time_budget_s:g}",
                epoch,
                config.epochs,
                report.seconds,
            )
            break
        if valid is not None and config.patience is not None:
            if epoch - best_epoch >= config.patience:
                stopped_by = "patience"
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainingSummary(
        best_epoch=best_epoch,
        best_valid_ndcg=None if valid is None else best_ndcg,
        epochs_run=len(history),
        stopped_by=stopped_by,
        train_seconds=_clock() - started,
        history=tuple(history),
    )


__all__ = [
    "EpochReport",
    "SASRecNet",
    "TrainConfig",
    "TrainingData",
    "TrainingSummary",
    "ValidationData",
    "evaluate_ndcg",
    "right_aligned",
    "train",
    "trim_padding",
]
