"""The first command on a machine with a GPU, before `make gpu-train`: `make gpu-first` runs it, then the training.

    python -m iseg.training.gpucheck --out runs/gpu_first          # environment, host costs, 30-second smokes

Into one run folder (`--out`), each step stopping the command with a one-line error when it fails:

1. `environment.json`: Python, torch, its CUDA and cuDNN, the device (name, memory, capability, bf16 support), the
   host's cores, the packages training reads with, the packed data's manifest (`datasets/packed`) and the
   MobileNetV2 weights it starts from. `--device cuda` without a usable CUDA device is an error.
2. `host_costs.csv` (`iseg.training.hostcost` on this host, its configured workers): can the CPUs feed the GPU?
3. `smoke.csv` and `smoke_{coarse,fine}/`: `coarse_gpu`, then `fine_gpu` from its checkpoint, each for one short
   epoch (`--smoke-samples`, a few validation images) on the device in the config's precision (bf16 autocast on
   CUDA), each within `--limit` seconds: seconds, samples per second, validation score, precision.

`make gpu-first` then runs `make gpu-train GPU_RUN=<out>/gpu`, so the whole first run sits in `<out>`.
`--train-args` are added to both smokes' `python -m iseg.train` commands (the test suite runs this on CPU in tiny
form with them).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive

PACKAGES = ("cv2", "numpy", "scipy", "pandas", "yaml", "tqdm")
PACKED = Path("datasets/packed")  # where coarse_gpu and fine_gpu read their data
STAGES = ("coarse", "fine")


def device_facts(device: str) -> dict:
    """torch, CUDA and the device; an error when `device` is CUDA and none is usable."""
    import torch

    facts = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             "cuda_available": torch.cuda.is_available(), "device": device}
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {device}: torch {torch.__version__} (CUDA {torch.version.cuda}) finds no "
                               "usable CUDA device; check `nvidia-smi` and that torch is a CUDA build")
        index = torch.device(device).index or 0
        properties = torch.cuda.get_device_properties(index)
        facts.update(name=properties.name, memory_gib=round(properties.total_memory / 2 ** 30, 1),
                     capability=f"{properties.major}.{properties.minor}", bf16=torch.cuda.is_bf16_supported())
    return facts


def package_versions() -> dict[str, str]:
    """Versions of the packages training imports; an error naming any that is missing."""
    versions = {}
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise RuntimeError(f"package {name!r} is missing ({error}); training needs {', '.join(PACKAGES)}") from None
        versions[name] = getattr(module, "__version__", "?")
    return versions


def packed_summary(packed: Path) -> dict:
    """The packed data's manifest in brief; an error when it is missing."""
    path = packed / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pack the data first (`make gpu-pack`, where the datasets are) "
                                f"and carry {packed}")
    manifest = json.loads(path.read_text())
    return {key: manifest.get(key) for key in ("images", "formats", "mib", "image_quality", "long_side", "date")}


def environment(device: str, packed: Path) -> dict:
    """Everything step 1 records."""
    from iseg.models.pretrained import mobilenet_v2_imagenet_path

    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "host": platform.node(), "cpu_count": os.cpu_count(),
            **device_facts(device), "packages": package_versions(), "packed": packed_summary(packed),
            "mobilenet_v2_weights": str(mobilenet_v2_imagenet_path())}


def run_logged(command: list[str], log: Path, limit: int) -> float:
    """Run `command` with its output in `log`, within `limit` seconds; wall seconds, or an error naming the log."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        try:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, timeout=limit)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{shlex.join(command)} took more than {limit} s (log: {log})") from None
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{shlex.join(command)} failed with status {done.returncode}: {tail[0]} (log: {log})")
    return time.perf_counter() - started


def smoke_command(stage: str, out: Path, device: str, samples: int, train_args: list[str]) -> list[str]:
    """`python -m iseg.train` for one short epoch of `<stage>_gpu` into out/smoke_<stage>."""
    command = [sys.executable, "-m", "iseg.train", stage, "--config", f"{stage}_gpu", "--out",
               str(out / f"smoke_{stage}"), "--device", device, "--epochs", "1", "--samples-per-epoch", str(samples),
               "--no-progress", "--set", "val_size=4", "--set", "val_clicks=3",
               "--set", "budget_minutes=null"]
    if stage == "fine":
        command += ["--coarse", str(out / "smoke_coarse" / "checkpoints" / "best.pt")]
    return command + train_args


def smoke_row(stage: str, out: Path, seconds: float) -> dict:
    """What a smoke run reports: wall seconds, training samples per second, validation score, precision."""
    run = out / f"smoke_{stage}"
    metrics = pd.read_csv(run / "metrics.csv")
    log = (out / f"smoke_{stage}.log").read_text()
    precision = next((line.split(":", 1)[1].strip() for line in log.splitlines() if line.startswith("precision:")),
                     "?")
    trained = metrics.dropna(subset=["samples_per_s"])
    return {"stage": stage, "seconds": round(seconds, 1),
            "samples_per_s": float(trained["samples_per_s"].iloc[-1]) if len(trained) else None,
            "val_score": float(metrics["val_score"].iloc[-1]), "precision": precision}


def main(argv: list[str] | None = None) -> int:
    """Command line: the three steps into --out."""
    parser = argparse.ArgumentParser(prog="python -m iseg.training.gpucheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_first"), help="the run folder")
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: the tiny test form)")
    parser.add_argument("--smoke-samples", type=int, default=512, help="training samples of each smoke epoch")
    parser.add_argument("--limit", type=int, default=180, help="seconds each smoke may take, start-up included")
    parser.add_argument("--host-samples", type=int, default=128, help="samples timed one by one per config")
    parser.add_argument("--train-args", default="", help="extra `python -m iseg.train` flags for both smokes")
    parser.add_argument("--host-args", default="", help="extra `python -m iseg.training.hostcost` flags")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    require_positive(parser, args, "smoke_samples", "limit", "host_samples")
    with reporting(parser.prog, args.debug):
        if args.out.exists() and any(args.out.iterdir()):
            raise FileExistsError(f"{args.out} exists and is not empty: move it away or pass another --out")
        args.out.mkdir(parents=True, exist_ok=True)
        facts = environment(args.device, PACKED)
        write_text(args.out / "environment.json", json.dumps(facts, indent=2) + "\n")
        print(f"environment: torch {facts['torch']}, {facts.get('name', args.device)}, bf16 {facts.get('bf16')}, "
              f"{facts['cpu_count']} cores, packed {facts['packed']['mib']} MiB")
        from iseg.training.hostcost import main as host_costs

        host_costs(["--out", str(args.out), "--samples", str(args.host_samples), *shlex.split(args.host_args)])
        rows = []
        for stage in STAGES:
            command = smoke_command(stage, args.out, args.device, args.smoke_samples, shlex.split(args.train_args))
            seconds = run_logged(command, args.out / f"smoke_{stage}.log", args.limit)
            rows.append(smoke_row(stage, args.out, seconds))
            print(f"smoke {stage}: {rows[-1]}")
        write_text(args.out / "smoke.csv", pd.DataFrame(rows).to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
