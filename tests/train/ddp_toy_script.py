"""Run under torchrun: trains the toy task with DDP and writes each rank's final weights sum."""
import json
import sys
from pathlib import Path

from tests.train.toy_task import ToyTask
from train.distributed import cleanup, init_distributed
from train.engine import LoopConfig, fit

out = Path(sys.argv[1])
info = init_distributed("cpu")
result = fit(ToyTask(), LoopConfig(epochs=2, batch_size=4, lr=1e-2, warmup_steps=1, progress=False),
             out / "run", info)
(out / f"rank{info.rank}.json").write_text(json.dumps(
    {"rank": info.rank, "world": info.world_size, "steps": result.steps, "epochs": result.epochs_run}))
cleanup(info)
