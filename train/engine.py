"""One training loop for every model: AdamW, warm-up + cosine, AMP on CUDA, accumulation,
atomic checkpoints with exact resume, early stopping, logs and curves, torchrun/DDP.

A model-specific `TrainTask` supplies the model, datasets, collate and the loss; the loop
never knows which model it trains.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from rrg_desk.fileio import replacing
from train.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from train.distributed import DistInfo, all_reduce_mean, barrier

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05  # cosine decays to lr * min_lr_ratio
    grad_accum: int = 1
    grad_clip: float = 1.0
    amp: bool = True  # used only on CUDA
    seed: int = 0
    early_stop_patience: int = 0  # epochs without improvement; 0 = never stop early
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    checkpoint_every: int = 0  # optimizer steps; 0 = at the end of each epoch only
    max_steps: int = 0  # stop (resumably) after this many optimizer steps; 0 = no limit
    num_workers: int = 0
    log_every: int = 10
    find_unused_parameters: bool = False
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LoopConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


class TrainTask(Protocol):
    name: str

    def build_model(self) -> nn.Module: ...
    def datasets(self) -> tuple[Dataset, Dataset | None]: ...
    def collate(self, batch: list) -> Any: ...
    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """Must call model(...) (not a bare method) so DDP synchronises gradients."""
    def validate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]: ...


@dataclass
class FitResult:
    run_dir: Path
    best_metric: float | None
    best_epoch: int | None
    epochs_run: int
    steps: int
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_model_weights(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    with replacing(path, shared=True) as tmp:
        save_file(state, str(tmp))


class TrainingRunLog:
    """Rank-0 JSON-lines log, per-epoch CSV and matplotlib curves next to the run."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.history: list[dict[str, Any]] = []
        self.train_points: list[tuple[int, float]] = []

    def event(self, **row: Any) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def epoch(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if not self.enabled:
            return
        keys = sorted({k for r in self.history for k in r})
        with open(self.run_dir / "metrics.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
        self._plot()

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metric_keys = sorted({k for r in self.history for k in r if k not in ("epoch", "step", "lr", "time_s")})
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        if self.train_points:
            steps, losses = zip(*self.train_points)
            axes[0].plot(steps, losses, lw=0.8)
        axes[0].set(title="training loss", xlabel="step")
        for key in metric_keys:
            xs = [r["epoch"] for r in self.history if key in r and r[key] is not None]
            ys = [r[key] for r in self.history if key in r and r[key] is not None]
            axes[1].plot(xs, ys, marker="o", label=key)
        axes[1].set(title="validation", xlabel="epoch")
        if metric_keys:
            axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.run_dir / "curves.png", dpi=80)
        plt.close(fig)


@dataclass
class RunState:
    """Where a run stands: saved in every checkpoint, restored by `resume`."""

    epoch: int = 0
    step: int = 0  # optimizer steps
    micro_in_epoch: int = 0  # micro-batches of the current epoch already consumed
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0


@dataclass
class TrainingRun:
    """What the steps of one `fit` share: the task, the model and its optimizer, the log."""

    task: TrainTask
    cfg: LoopConfig
    info: DistInfo
    run_dir: Path
    model: nn.Module  # the bare model: validated and saved
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    logger: TrainingRunLog
    state: RunState = field(default_factory=RunState)
    train_model: nn.Module | None = None  # what the loss calls: the model, DDP-wrapped when distributed
    started: float = 0.0


def fit(task: TrainTask, cfg: LoopConfig, run_dir: Path, info: DistInfo, resume: bool = False,
        model: nn.Module | None = None) -> FitResult:
    """Train `task` into `run_dir`; with `resume`, continue from its latest checkpoint."""
    run_dir = Path(run_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    barrier(info)
    seed_everything(cfg.seed)
    model = (model or task.build_model()).to(info.device)
    train_set, val_set = task.datasets()
    run = _start_run(task, cfg, info, run_dir, model, len(train_set))
    restored_rng = _resume(run) if resume else None
    run.train_model = _for_training(model, cfg, info)  # after resuming: DDP broadcasts rank 0's weights
    sampler = DistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    run.started = time.time()
    stopped_early = _patience_exhausted(run)
    if stopped_early:
        run.state.epoch = cfg.epochs  # resumed a run that had already stopped early: nothing left to do
    while run.state.epoch < cfg.epochs and not _step_limit_reached(run):
        losses, whole_epoch = train_one_epoch(run, train_set, sampler, restored_rng)
        restored_rng = None
        if not whole_epoch:  # interrupted mid-epoch by max_steps: keep the exact position
            if info.is_main:
                save_run_checkpoint(run)
            break
        metrics = {"train_loss": float(np.mean(losses)) if losses else None}
        metrics.update(evaluate(run, val_set))
        _end_epoch(run, _broadcast_metrics(metrics, info))
        if _patience_exhausted(run):
            stopped_early = True
            if info.is_main:
                log.info("%s: early stop after epoch %d (%s did not improve for %d epochs)",
                         task.name, run.state.epoch, cfg.monitor, run.state.bad_epochs)
            break
    barrier(info)
    state = run.state
    return FitResult(run_dir, state.best_metric, state.best_epoch, state.epoch, state.step, stopped_early,
                     run.logger.history)


def _start_run(task: TrainTask, cfg: LoopConfig, info: DistInfo, run_dir: Path, model: nn.Module,
               train_size: int) -> TrainingRun:
    """AdamW (no weight decay on biases and norms), warm-up + cosine per optimizer step, AMP."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or name.endswith(".bias") else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    micro_per_epoch = math.ceil(math.ceil(train_size / info.world_size) / cfg.batch_size)
    steps_per_epoch = max(1, micro_per_epoch // cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs  # max_steps interrupts; it never reshapes the schedule
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, total_steps, cfg.min_lr_ratio))
    use_amp = cfg.amp and info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    return TrainingRun(task, cfg, info, run_dir, model, optimizer, scheduler, scaler, use_amp,
                TrainingRunLog(run_dir, info.is_main))


def _resume(run: TrainingRun) -> dict[str, Any] | None:
    """Restore the latest checkpoint of the run folder, if there is one; returns its RNG state,
    which is restored once the first epoch's loader exists."""
    ckpt_path = latest_checkpoint(run.run_dir)
    if ckpt_path is None:
        return None
    state = load_checkpoint(ckpt_path, map_location=run.info.device)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.state = RunState(epoch=state["epoch"], step=state["step"], micro_in_epoch=state["micro_in_epoch"],
                         best_metric=state["best_metric"], best_epoch=state["best_epoch"],
                         bad_epochs=state["bad_epochs"])
    run.logger.history = state["history"]
    if run.info.is_main:
        log.info("resumed %s from %s (epoch %d, step %d)", run.task.name, ckpt_path.name, run.state.epoch,
                 run.state.step)
    return state["rng"]


def _for_training(model: nn.Module, cfg: LoopConfig, info: DistInfo) -> nn.Module:
    if not info.distributed:
        return model
    ddp_kwargs = {"device_ids": [info.device.index]} if info.device.type == "cuda" else {}
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=cfg.find_unused_parameters,
                                               **ddp_kwargs)


def _step_limit_reached(run: TrainingRun) -> bool:
    return bool(run.cfg.max_steps and run.state.step >= run.cfg.max_steps)


def _patience_exhausted(run: TrainingRun) -> bool:
    return bool(run.cfg.early_stop_patience and run.state.bad_epochs >= run.cfg.early_stop_patience)


def train_one_epoch(run: TrainingRun, train_set: Dataset, sampler: DistributedSampler,
                    restored_rng: dict[str, Any] | None = None) -> tuple[list[float], bool]:
    """This rank's share of the epoch, from where a resumed epoch stopped: the loss of each
    micro-batch, and whether the epoch ran to its end (max_steps may interrupt it)."""
    cfg, state = run.cfg, run.state
    sampler.set_epoch(state.epoch)
    indices = list(sampler)
    batches = [indices[i:i + cfg.batch_size] for i in range(0, len(indices), cfg.batch_size)]
    # Exact resume: skip what this epoch already consumed, then restore the RNG as it was.
    loader = DataLoader(train_set, batch_sampler=batches[state.micro_in_epoch:], collate_fn=run.task.collate,
                        num_workers=cfg.num_workers)
    batch_iter = iter(loader)  # creating the iterator draws from the RNG: do it before restoring
    if restored_rng is not None:
        set_rng_state(restored_rng)
    run.train_model.train()
    progress = _progress(len(batches), state.micro_in_epoch, f"{run.task.name} epoch {state.epoch + 1}/{cfg.epochs}",
                         run.info.is_main and cfg.progress)
    losses: list[float] = []
    for batch in batch_iter:
        state.micro_in_epoch += 1
        boundary = state.micro_in_epoch % cfg.grad_accum == 0 or state.micro_in_epoch == len(batches)
        loss, parts = _backward(run, batch, sync_gradients=boundary)
        losses.append(float(loss.detach()))
        progress.update(1)
        if not boundary:
            continue
        _optimizer_step(run)
        _after_step(run, losses, parts, progress)
        if _step_limit_reached(run):
            break
    progress.close()
    return losses, not (_step_limit_reached(run) and state.micro_in_epoch < len(batches))


def _backward(run: TrainingRun, batch: Any, sync_gradients: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward and backward of one micro-batch; DDP syncs gradients only at an accumulation boundary."""
    skip_sync = run.info.distributed and not sync_gradients
    sync = run.train_model.no_sync() if skip_sync else contextlib.nullcontext()
    with sync, torch.autocast(run.info.device.type, enabled=run.use_amp):
        loss, parts = run.task.loss(run.train_model, batch, run.info.device)
        scaled = loss / run.cfg.grad_accum
    run.scaler.scale(scaled).backward() if run.use_amp else scaled.backward()
    return loss, parts


def _optimizer_step(run: TrainingRun) -> None:
    if run.use_amp:
        run.scaler.unscale_(run.optimizer)
    if run.cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    if run.use_amp:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    run.state.step += 1


def _after_step(run: TrainingRun, losses: list[float], parts: dict[str, float], progress) -> None:
    """Log every log_every steps; a checkpoint every checkpoint_every steps (main process)."""
    cfg, step = run.cfg, run.state.step
    run.logger.train_points.append((step, losses[-1]))
    if step % cfg.log_every == 0:
        recent = np.mean(losses[-cfg.log_every:])
        run.logger.event(kind="train", step=step, epoch=run.state.epoch, loss=float(recent),
                         lr=run.scheduler.get_last_lr()[0], **{k: float(v) for k, v in parts.items()})
        progress.set_postfix(loss=f"{recent:.3f}")
    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and run.info.is_main:
        save_run_checkpoint(run)


def evaluate(run: TrainingRun, val_set: Dataset | None) -> dict[str, float]:
    """The task's validation metrics, computed on the main process only (other ranks get {})."""
    if val_set is None or not run.info.is_main:
        return {}
    run.model.eval()
    with torch.no_grad():
        return run.task.validate(run.model, val_set, run.info.device)


def _end_epoch(run: TrainingRun, metrics: dict[str, Any]) -> None:
    """Log the epoch, track the best (best.safetensors), save last.safetensors and a checkpoint."""
    cfg, state = run.cfg, run.state
    row = {"epoch": state.epoch + 1, "step": state.step, "lr": run.scheduler.get_last_lr()[0],
           "time_s": round(time.time() - run.started, 1), **metrics}
    run.logger.epoch(row)
    run.logger.event(kind="epoch", **row)
    current = metrics.get(cfg.monitor)
    improved = current is not None and (state.best_metric is None or (
        current < state.best_metric if cfg.monitor_mode == "min" else current > state.best_metric))
    if improved:
        state.best_metric, state.best_epoch, state.bad_epochs = current, state.epoch + 1, 0
        if run.info.is_main:
            save_model_weights(run.model, run.run_dir / "best.safetensors")
            (run.run_dir / "best.json").write_text(json.dumps({"epoch": state.epoch + 1, cfg.monitor: current}))
    else:
        state.bad_epochs += 1
    state.epoch += 1
    state.micro_in_epoch = 0
    if run.info.is_main:
        save_model_weights(run.model, run.run_dir / "last.safetensors")
        save_run_checkpoint(run)


def save_run_checkpoint(run: TrainingRun) -> None:
    """`{model, optimizer, scheduler, scaler, args, epoch, ...}` as train/checkpoint.py stores it."""
    state = run.state
    save_checkpoint(run.run_dir, state.step, {
        "model": _unwrap(run.train_model).state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
        "args": asdict(run.cfg), "task": run.task.name, "epoch": state.epoch, "step": state.step,
        "micro_in_epoch": state.micro_in_epoch, "best_metric": state.best_metric,
        "best_epoch": state.best_epoch, "bad_epochs": state.bad_epochs, "history": run.logger.history,
        "rng": rng_state()})


def _broadcast_metrics(metrics: dict[str, Any], info: DistInfo) -> dict[str, Any]:
    """Validation runs on rank 0; every rank needs its numbers for early stopping.

    Sent as JSON bytes in a tensor (broadcast_object_list would pickle)."""
    if not (info.distributed and dist.is_initialized()):
        return metrics
    payload = json.dumps(metrics).encode() if info.is_main else b""
    size = torch.tensor([len(payload)], dtype=torch.long, device=info.device)
    dist.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=info.device)
    if info.is_main:
        buffer.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buffer, src=0)
    out = json.loads(bytes(buffer.cpu().tolist()).decode())
    if metrics.get("train_loss") is not None:
        out["train_loss"] = all_reduce_mean(metrics["train_loss"], info)
    return out


class _NullProgress:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **_postfix: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return _NullProgress()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)
