"""Training steps per second on the CPU for each model, with the DEFAULT configs
(train/configs/default.yaml) on real batches from ../shared/data: a few warm-up steps, then
timed optimizer steps (forward, backward, clip, AdamW). No full training.

Target: the model's whole default schedule (epochs x steps per epoch) fits in
CPU_BUDGET_HOURS on this machine's CPU, i.e. steps/s >= schedule steps / budget.
Runs in a fresh subprocess (2 threads) so nothing else in the bench process interferes.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import result

ROOT = Path(__file__).resolve().parent.parent
CPU_BUDGET_HOURS = 2.0

_CHILD = r"""
import json, math, statistics, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
from bench.common import percentile
from train.config import load_config
from train.data.r2gen import read_annotation
from train.data.text_corpus import region_sentence_pairs
from rrg_desk.reports.text import clean_clinical_note
from train.tasks.common import loop_config

warmup, timed = int(sys.argv[1]), int(sys.argv[2])
base = load_config()
base["out_dir"] = tempfile.mkdtemp(prefix="bench-train-")
device = torch.device("cpu")

def config_with(limit):
    return {**base, "limit": limit}

def timed_steps(model, loss_fn, batches, loop):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=loop.lr, weight_decay=loop.weight_decay)
    model.train()
    samples = []
    for step in range(warmup + timed):
        batch = batches[step % len(batches)]
        start = time.perf_counter()
        loss = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, loop.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            samples.append(time.perf_counter() - start)
    return {"p50_s": statistics.median(samples), "p95_s": percentile(samples, 0.95), "steps": len(samples),
            "params_m": sum(p.numel() for p in params) / 1e6}

out = {}
# -- detector: JSRT images and region boxes, batch_size of the default loop
from train.tasks.detector_task import DetectorTask, build_detector
loop = loop_config(base, base["detector"])
task = DetectorTask(config_with(loop.batch_size * 2))
batches = [task.collate([task.train_set[i] for i in range(b * loop.batch_size, (b + 1) * loop.batch_size)])
           for b in range(2)]
out["detector"] = timed_steps(build_detector(base), lambda m, b: task.loss(m, b, device)[0], batches, loop)
out["detector"]["schedule_steps"] = loop.epochs * math.ceil(172 / loop.batch_size)
out["detector"]["batch_size"] = loop.batch_size

# -- CLIP classifier: covid_cxr image-note pairs
from train.tasks.clip_task import ClipTask
loop = loop_config(base, base["clip"])
task = ClipTask(config_with(loop.batch_size))
batches = [task.collate([task.train_set[i] for i in range(loop.batch_size)])]
out["clip"] = timed_steps(task.build_model(), lambda m, b: task.loss(m, b, device)[0], batches, loop)
train_items = len(read_annotation(Path(base["data"]["covid"]) / "annotation.json", "train"))
out["clip"]["schedule_steps"] = loop.epochs * math.ceil(train_items / loop.batch_size)
out["clip"]["batch_size"] = loop.batch_size

# -- generator: region features from the (random) default detector on real images, report clues
from train.tasks.generator_task import GeneratorTask
loop = loop_config(base, base["generator"])
config = config_with(8)
detector = build_detector(config).eval()
task = GeneratorTask(config, detector, task.tokenizer, device)
n = len(task.train_set)
batches = [task.collate([task.train_set[(i + k * loop.batch_size) % n] for i in range(loop.batch_size)])
           for k in range(2)]
out["generator"] = timed_steps(task.build_model(), lambda m, b: task.loss(m, b, device)[0], batches, loop)
pairs = sum(len(region_sentence_pairs(clean_clinical_note(e["report"]), "all"))
            for e in read_annotation(Path(base["data"]["covid"]) / "annotation.json", "train"))
out["generator"]["schedule_steps"] = loop.epochs * math.ceil(pairs / loop.batch_size)
out["generator"]["batch_size"] = loop.batch_size
print("BENCH " + json.dumps(out))
"""


def run(warmup: int = 2, timed: int = 10) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(warmup), str(timed)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"training benchmark failed: {proc.stderr[-2000:]}")
    rows = []
    budget_s = CPU_BUDGET_HOURS * 3600
    for model, data in json.loads(line[6:]).items():
        steps_per_s = 1.0 / data["p50_s"]
        target = data["schedule_steps"] / budget_s
        hours = data["schedule_steps"] * data["p50_s"] / 3600
        rows.append(result(f"train_{model}_steps_per_s_cpu", steps_per_s, "steps/s", round(target, 4),
                           lower_is_better=False, p95_step_s=round(data["p95_s"], 3), runs=data["steps"],
                           batch_size=data["batch_size"], params_m=round(data["params_m"], 2),
                           note=f"default config, batch {data['batch_size']}; full default schedule "
                                f"{data['schedule_steps']} steps = {hours:.1f} h on this CPU "
                                f"(target: within {CPU_BUDGET_HOURS:g} h)"))
    return rows
