"""SASRec trained data-parallel on Ray Train (`train_workers > 1`), DDP over gloo on CPU.

`ray.train.torch.TorchTrainer` starts `workers` processes (one CPU each, spread over the
cluster) joined in one torch process group (gloo). Each starts from the same weights
(the same seed) and trains on its own shard of the sequences (every `workers`-th row);
after each backward pass the gradients are averaged over the workers (an all-reduce),
so every worker takes the same optimiser step and the weights stay identical. That is
DistributedDataParallel's rule, done by hand: DDP syncs gradients only through the
module's `forward`, and the loss here reads the network through `encode` and
`item_weights`. Worker 0's weights come back as the fitted model.

- Every worker gets as many sequences as the others (the shards wrap around by at most
  `workers - 1` rows), so all take the same number of steps per epoch: an all-reduce
  waits for every worker.
- The validation users are scored on every worker: their weights are equal, so early
  stopping decides the same everywhere. `time_budget_s` (a wall-clock cap) is not used:
  workers could stop in different epochs and wait for each other for ever.
- The model is not the one-worker model (another batch order and an effective batch of
  `workers x batch_size`): equal quality is expected, equal weights are not.

Ray is imported here only, when `train_workers > 1` asks for it; the process joins the
Ray it is connected to (a run with `compute.engine: ray` connects before its first
stage on Ray), else the cluster at `$RAY_ADDRESS`, else starts one here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shelfwise.errors import ComputeUnavailableError
from shelfwise.retrieval._sasrec_net import (
    SASRecNet,
    TrainConfig,
    TrainingData,
    TrainingSummary,
    ValidationData,
    train,
)

_STATE_FILE = "state.pt"


def shard(data: TrainingData, rank: int, workers: int) -> TrainingData:
    """Rows `rank, rank + workers, …`, as many for every rank (wrapping around)."""
    rows = data.inputs.shape[0]
    per_worker = -(-rows // workers)  # ceil
    picked = (rank + workers * np.arange(per_worker)) % rows
    return TrainingData(data.inputs[picked], data.targets[picked], data.item_counts)


def train_on_ray(
    architecture: dict[str, Any],
    data: TrainingData,
    config: TrainConfig,
    *,
    seed: int,
    valid: ValidationData | None,
    workers: int,
    num_threads: int,
) -> tuple[dict[str, torch.Tensor], TrainingSummary]:
    """Train on `workers` Ray Train workers; (worker 0's weights, its summary).

    Args:
        architecture: `SASRecNet`'s constructor arguments.

    Raises:
        ComputeUnavailableError: Ray (with Ray Train) is not installed or cannot start.
    """
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as error:
        raise ComputeUnavailableError(
            f"sasrec: train_workers={workers} trains on Ray Train, but it cannot be "
            f"imported ({error}); install the cluster extra or set train_workers: 1"
        ) from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False)
    storage = Path(tempfile.mkdtemp(prefix="shelfwise-sasrec-"))
    try:
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={
                "architecture": architecture,
                "data": data,
                # no wall-clock cap: see the module docstring
                "config": dataclasses.replace(config, time_budget_s=None),
                "seed": seed,
                "valid": valid,
                "num_threads": num_threads,
            },
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False),
            run_config=RunConfig(name="sasrec", storage_path=str(storage)),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise ComputeUnavailableError(
                f"sasrec: Ray Train ended without the model ({result.error}); check the "
                "cluster (`ray status`) or set train_workers: 1"
            )
        with result.checkpoint.as_directory() as folder:
            saved = torch.load(Path(folder) / _STATE_FILE, weights_only=False)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return saved["state"], saved["summary"]


def _train_loop(settings: dict[str, Any]) -> None:
    """One Ray Train worker: its shard, gradients averaged with the others each step."""
    import ray.train
    import torch.distributed as dist

    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(settings["num_threads"])
    torch.manual_seed(settings["seed"])  # the same initial weights on every worker
    net = SASRecNet(**settings["architecture"])

    def average_gradients(module: torch.nn.Module) -> None:
        for parameter in module.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
                parameter.grad /= workers

    summary = train(
        net,
        shard(settings["data"], rank, workers),
        settings["config"],
        seed=settings["seed"] + rank,  # each worker its own batch order and negatives
        valid=settings["valid"],
        after_backward=average_gradients,
    )
    checkpoint = None
    folder = Path(tempfile.mkdtemp(prefix="shelfwise-sasrec-rank-"))
    if rank == 0:
        torch.save({"state": net.state_dict(), "summary": summary}, folder / _STATE_FILE)
        checkpoint = ray.train.Checkpoint.from_directory(str(folder))
    ray.train.report({"best_epoch": summary.best_epoch}, checkpoint=checkpoint)
    shutil.rmtree(folder, ignore_errors=True)
