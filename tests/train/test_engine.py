import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.train.toy_task import ToyTask
from train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from train.distributed import DistInfo
from train.engine import LoopConfig, fit

ROOT = Path(__file__).resolve().parents[2]
CPU = DistInfo()


def _cfg(**kw):
    base = dict(epochs=3, batch_size=8, lr=1e-2, warmup_steps=2, progress=False, log_every=1)
    base.update(kw)
    return LoopConfig(**base)


def test_training_reduces_validation_loss_and_writes_run_files(tmp_path):
    result = fit(ToyTask(), _cfg(epochs=6), tmp_path, CPU)
    losses = [row["val_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    for name in ("log.jsonl", "metrics.csv", "curves.png", "best.safetensors", "last.safetensors"):
        assert (tmp_path / name).exists(), name
    assert latest_checkpoint(tmp_path) is not None


def test_resume_after_interruption_reproduces_the_same_next_step(tmp_path):
    full = fit(ToyTask(), _cfg(checkpoint_every=1), tmp_path / "full", CPU)
    # Interrupted mid-epoch after 4 optimizer steps, then resumed in a fresh "process".
    fit(ToyTask(), _cfg(max_steps=4), tmp_path / "cut", CPU)
    resumed = fit(ToyTask(), _cfg(), tmp_path / "cut", CPU, resume=True)
    assert resumed.steps == full.steps
    a = load_file(str(tmp_path / "full" / "last.safetensors"))
    b = load_file(str(tmp_path / "cut" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_checkpoint_round_trip_keeps_types_without_pickle(tmp_path):
    state = {"w": torch.arange(3.0), "opt": {"state": {0: {"exp_avg": torch.ones(2), "step": torch.tensor(3.0)}},
                                              "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]},
             "epoch": 2, "name": "x", "none": None}
    path = save_checkpoint(tmp_path, 7, state)
    back = load_checkpoint(path)
    assert back["epoch"] == 2 and back["name"] == "x" and back["none"] is None
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert 0 in back["opt"]["state"]
    torch.testing.assert_close(back["opt"]["state"][0]["exp_avg"], torch.ones(2))
    assert {p.name for p in path.iterdir()} == {"tensors.safetensors", "state.json"}


def test_half_written_checkpoint_is_ignored(tmp_path):
    save_checkpoint(tmp_path, 1, {"x": torch.zeros(1)})
    (tmp_path / ".tmp-step-0000002").mkdir()  # a write killed before the rename
    assert latest_checkpoint(tmp_path).name == "step-0000001"


def test_two_process_ddp_with_gloo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), GLOO_SOCKET_IFNAME="lo")  # loopback only: no network here
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(ROOT / "tests/train/ddp_toy_script.py"), str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # 48 samples / 2 ranks / batch 4 = 6 steps per epoch, 2 epochs, the same on both ranks
    assert [r["steps"] for r in ranks] == [12, 12]
    assert (tmp_path / "run" / "last.safetensors").exists()


class _FlatValidation(ToyTask):
    def validate(self, model, dataset, device):
        return {"val_loss": 1.0}  # never improves after the first epoch


def test_resuming_an_early_stopped_run_trains_no_further(tmp_path):
    first = fit(_FlatValidation(), _cfg(epochs=10, early_stop_patience=2), tmp_path, CPU)
    assert first.stopped_early and first.steps == 3 * 6
    again = fit(_FlatValidation(), _cfg(epochs=10, early_stop_patience=2), tmp_path, CPU, resume=True)
    assert again.stopped_early and again.steps == first.steps
