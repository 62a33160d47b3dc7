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
    with replacing(path) as tmp:
        save_file(state, str(tmp))


class _RunLog:
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


def fit(task: TrainTask, cfg: LoopConfig, run_dir: Path, info: DistInfo, resume: bool = False,
        model: nn.Module | None = None) -> FitResult:
    """Train `task` into `run_dir`; with `resume`, continue from its latest checkpoint."""
    run_dir = Path(run_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    barrier(info)
    seed_everything(cfg.seed)
    device = info.device
    model = (model or task.build_model()).to(device)
    train_set, val_set = task.datasets()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or name.endswith(".bias") else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    micro_per_epoch = math.ceil(math.ceil(len(train_set) / info.world_size) / cfg.batch_size)
    steps_per_epoch = max(1, micro_per_epoch // cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs  # max_steps interrupts; it never reshapes the schedule
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, total_steps, cfg.min_lr_ratio))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    epoch, step, micro_done = 0, 0, 0
    best_metric, best_epoch, bad_epochs = None, None, 0
    logger = _RunLog(run_dir, info.is_main)
    restored_rng = None
    if resume and (ckpt_path := latest_checkpoint(run_dir)) is not None:
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, step, micro_done = state["epoch"], state["step"], state["micro_in_epoch"]
        best_metric, best_epoch, bad_epochs = state["best_metric"], state["best_epoch"], state["bad_epochs"]
        logger.history = state["history"]
        restored_rng = state["rng"]
        if info.is_main:
            log.info("resumed %s from %s (epoch %d, step %d)", task.name, ckpt_path.name, epoch, step)

    if info.distributed:
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        train_model: nn.Module = nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=cfg.find_unused_parameters, **ddp_kwargs)
    else:
        train_model = model

    def checkpoint_state() -> dict[str, Any]:
        return {"model": _unwrap(train_model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "args": asdict(cfg), "task": task.name, "epoch": epoch, "step": step,
                "micro_in_epoch": micro_done, "best_metric": best_metric, "best_epoch": best_epoch,
                "bad_epochs": bad_epochs, "history": logger.history, "rng": rng_state()}

    stopped_early = False
    sampler = DistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    started = time.time()
    if cfg.early_stop_patience and bad_epochs >= cfg.early_stop_patience:
        epoch = cfg.epochs  # resumed a run that had already stopped early: nothing left to do
        stopped_early = True
    while epoch < cfg.epochs and not (cfg.max_steps and step >= cfg.max_steps):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        batches = [indices[i:i + cfg.batch_size] for i in range(0, len(indices), cfg.batch_size)]
        # Exact resume: skip what this epoch already consumed, then restore the RNG as it was.
        loader = DataLoader(train_set, batch_sampler=batches[micro_done:], collate_fn=task.collate,
                            num_workers=cfg.num_workers)
        batch_iter = iter(loader)  # creating the iterator draws from the RNG: do it before restoring
        if restored_rng is not None:
            set_rng_state(restored_rng)
            restored_rng = None
        train_model.train()
        progress = _progress(len(batches), micro_done, f"{task.name} epoch {epoch + 1}/{cfg.epochs}",
                             info.is_main and cfg.progress)
        running = []
        for batch in batch_iter:
            micro_done += 1
            boundary = micro_done % cfg.grad_accum == 0 or micro_done == len(batches)
            sync = contextlib.nullcontext() if (boundary or not info.distributed) else train_model.no_sync()
            with sync, torch.autocast(device.type, enabled=use_amp):
                loss, parts = task.loss(train_model, batch, device)
                scaled = loss / cfg.grad_accum
            scaler.scale(scaled).backward() if use_amp else scaled.backward()
            running.append(float(loss.detach()))
            progress.update(1)
            if not boundary:
                continue
            if use_amp:
                scaler.unscale_(optimizer)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if use_amp:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            logger.train_points.append((step, running[-1]))
            if step % cfg.log_every == 0:
                logger.event(kind="train", step=step, epoch=epoch, loss=float(np.mean(running[-cfg.log_every:])),
                             lr=scheduler.get_last_lr()[0], **{k: float(v) for k, v in parts.items()})
                progress.set_postfix(loss=f"{np.mean(running[-cfg.log_every:]):.3f}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and info.is_main:
                save_checkpoint(run_dir, step, checkpoint_state())
            if cfg.max_steps and step >= cfg.max_steps:
                break
        progress.close()
        if cfg.max_steps and step >= cfg.max_steps and micro_done < len(batches):
            if info.is_main:  # interrupted mid-epoch by max_steps: keep the exact position
                save_checkpoint(run_dir, step, checkpoint_state())
            break
        metrics = {"train_loss": float(np.mean(running)) if running else None}
        if val_set is not None and info.is_main:
            model.eval()
            with torch.no_grad():
                metrics.update(task.validate(model, val_set, device))
        metrics = _broadcast_metrics(metrics, info)
        row = {"epoch": epoch + 1, "step": step, "lr": scheduler.get_last_lr()[0],
               "time_s": round(time.time() - started, 1), **metrics}
        logger.epoch(row)
        logger.event(kind="epoch", **row)
        current = metrics.get(cfg.monitor)
        improved = current is not None and (best_metric is None or (
            current < best_metric if cfg.monitor_mode == "min" else current > best_metric))
        if improved:
            best_metric, best_epoch, bad_epochs = current, epoch + 1, 0
            if info.is_main:
                save_model_weights(model, run_dir / "best.safetensors")
                (run_dir / "best.json").write_text(json.dumps({"epoch": epoch + 1, cfg.monitor: current}))
        else:
            bad_epochs += 1
        epoch += 1
        micro_done = 0
        if info.is_main:
            save_model_weights(model, run_dir / "last.safetensors")
            save_checkpoint(run_dir, step, checkpoint_state())
        if cfg.early_stop_patience and bad_epochs >= cfg.early_stop_patience:
            stopped_early = True
            if info.is_main:
                log.info("%s: early stop after epoch %d (%s did not improve for %d epochs)",
                         task.name, epoch, cfg.monitor, bad_epochs)
            break
    barrier(info)
    return FitResult(run_dir, best_metric, best_epoch, epoch, step, stopped_early, logger.history)


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
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return _NullProgress()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)
