"""The GPU checks of issue 11 in one short run on a lent CUDA machine (docs/benchmarks.md).

    .venv/bin/python bench/gpu_check.py --out DIR            # where fercleaner is installed
    .venv/bin/python bench/gpu_check.py --out DIR --cpu      # a rehearsal on CPU, tiny

On a machine with torch and timm but no install of fercleaner, from a copy of the
checkout (setup.py maps `recipes/` and `app/` into the package):

    ln -s ../recipes fercleaner/recipes; ln -s ../app fercleaner/app
    PYTHONPATH=$PWD python3 bench/gpu_check.py --out DIR

Steps, each a real `fercleaner` command on `fercleaner synth` faces:

1. one process, CUDA with AMP, the default recipe;
2. `torchrun --nproc_per_node 1` on CUDA (a world of one starts no process group, so no
   NCCL: the nccl path itself needs two GPUs, `tests/test_training_ddp.py`);
3. `kill -9` of that rank after its first checkpoint, then the same command with
   `--resume`, against an uninterrupted run;
4. `torchrun --nproc_per_node 2` on one GPU: refused before NCCL would fail;
5. the `paper` recipe (224 px RGB, ResNet-18, 5-fold in the recipe; one fold here) for its
   training throughput, projected to 5 folds x 40 epochs per 100k images.

Writes `gpu_check.json` (the figures) and `gpu_check.log` (every command's output tail).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-check"))
    parser.add_argument("--cpu", action="store_true", help="rehearse on CPU (gloo), tiny data")
    args = parser.parse_args(argv)
    if args.work.exists() and any(args.work.iterdir()):
        # old run folders would be resumed or refused, and an old checkpoint would end the
        # kill test at once: start from nothing
        parser.error(f"--work {args.work} is not empty: remove it or pass another folder")
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.work, cpu=args.cpu)
    for step in (
        check.environment,
        check.synth,
        check.one_process,
        check.torchrun_one,
        check.kill_and_resume,
        check.two_on_one_gpu,
        check.paper_throughput,
    ):
        check.run_step(step)
    check.save()
    return 0 if all(r.get("ok") for r in check.results.values()) else 1


def fercleaner_command(*args: str, torchrun: int = 0) -> list[str]:
    """`python -m fercleaner ARGS`, under `torchrun --nproc_per_node TORCHRUN` when set."""
    if not torchrun:
        return [sys.executable, "-m", "fercleaner", *args]
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(torchrun)]
    return [sys.executable, *launch, "-m", "fercleaner", *args]


class Check:
    def __init__(self, out: Path, work: Path, *, cpu: bool) -> None:
        self.out, self.work, self.cpu = out, work, cpu
        self.results: dict[str, dict] = {}
        self.log = (out / "gpu_check.log").open("w", encoding="utf-8")
        self.small = 96 if cpu else 3000
        self.device = ["train.device=cpu", "train.num_threads=1"] if cpu else []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.env["FERCLEANER_CACHE"] = str(work / "cache")

    # -- helpers ---------------------------------------------------------------------
    def run_step(self, step) -> None:
        name = step.__name__
        started = time.perf_counter()
        self._say(f"== {name}")
        try:
            self.results[name] = {**step(), "wall_s": round(time.perf_counter() - started, 1)}
        except Exception as error:  # a failed step is a result too; the others still run
            self.results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        self._say(json.dumps(self.results[name]))
        self.save()

    def save(self) -> None:
        (self.out / "gpu_check.json").write_text(json.dumps(self.results, indent=2))

    def _say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def fc(self, *args: str, torchrun: int = 0, check: bool = True, extra_env=None):
        command = fercleaner_command(*args, torchrun=torchrun)
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**self.env, **(extra_env or {})},
            timeout=420,
        )
        self._say("$ " + " ".join(command[1:]))
        self._say((done.stdout + done.stderr)[-3000:])
        if check and done.returncode != 0:
            raise RuntimeError(f"exit {done.returncode}: {' '.join(args[:2])}")
        return done

    def run_info(self, run: Path) -> dict:
        return json.loads((run / "run.json").read_text())

    # -- steps -----------------------------------------------------------------------
    def environment(self) -> dict:
        import timm
        import torch

        cuda = torch.cuda.is_available()
        return {
            "ok": cuda or self.cpu,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "gpus": torch.cuda.device_count() if cuda else 0,
        }

    def synth(self) -> dict:
        self.fc(
            "synth",
            str(self.work / "g48"),
            "--n",
            str(self.small),
            "--noise",
            "0.2",
            "--seed",
            "0",
            "--layout",
            "imagefolder",
        )
        self.fc(
            "synth",
            str(self.work / "g224"),
            "--n",
            str(self.small // 2 if not self.cpu else 32),
            "--seed",
            "1",
            "--size",
            "224",
            "--rgb",
            "--layout",
            "imagefolder",
        )
        return {"ok": True}

    def one_process(self) -> dict:
        run = self.work / "r-one"
        self.fc("score", str(self.work / "g48"), "--out", str(run), "train.epochs=5", *self.device)
        info = self.run_info(run)
        return {
            "ok": str(info["device"]).startswith("cpu" if self.cpu else "cuda"),
            "device": info["device"],
            "precision": info["precision"],
            "training": info["training"],
            "total_s": info["timings"]["total_s"],
        }

    def torchrun_one(self) -> dict:
        """One torchrun process trains as a plain one: `init_distributed` starts no process
        group for a world of one, so NCCL is not started (it needs two GPUs to be)."""
        run = self.work / "r-ddp1"
        done = self.fc(
            "score",
            str(self.work / "g48"),
            "--out",
            str(run),
            "train.epochs=3",
            *self.device,
            torchrun=1,
            extra_env={"NCCL_DEBUG": "INFO"},
        )
        info = self.run_info(run)
        device_ok = str(info["device"]).startswith("cpu" if self.cpu else "cuda")
        return {
            "ok": info["world_size"] == 1 and device_ok,
            "device": info["device"],
            "world_size": info["world_size"],
            "nccl_started": "NCCL version" in done.stdout + done.stderr,
        }

    def kill_and_resume(self) -> dict:
        faces, epochs = str(self.work / "g48"), "train.epochs=30"
        base = ("score", faces, "--method", "baseline", epochs, *self.device)
        self.fc(*base[:2], "--out", str(self.work / "r-straight"), *base[2:], torchrun=1)
        run = self.work / "r-kill"
        checkpoint = run / "checkpoints" / "baseline" / "fold0.pt"
        command = fercleaner_command(*base[:2], "--out", str(run), *base[2:], torchrun=1)
        launcher = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while not checkpoint.exists():
            if time.monotonic() > deadline or launcher.poll() is not None:
                raise RuntimeError("no checkpoint before the deadline or the end of the run")
            time.sleep(0.005)
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and its rank, at once
        launcher.wait(timeout=60)
        from fercleaner.training.checkpoint import load_checkpoint

        stopped = int(load_checkpoint(checkpoint)["epoch"])
        finished_before = (run / "run.json").exists()
        self.fc(*base[:2], "--out", str(run), *base[2:], "--resume", torchrun=1)
        info = self.run_info(run)
        import numpy as np

        from fercleaner.scoring import read_scores

        got = read_scores(run / "scores.parquet").frame.set_index("sample_id").sort_index()
        want = read_scores(self.work / "r-straight" / "scores.parquet").frame
        want = want.set_index("sample_id").sort_index()
        gap = float(np.abs(got["label_quality"] - want["label_quality"]).max())
        trained = info["training"][0]["images_trained"]
        straight = self.run_info(self.work / "r-straight")["training"][0]["images_trained"]
        # resumed, not restarted: fewer images trained than the uninterrupted run's
        return {
            "ok": not finished_before and trained < straight,
            "killed_after_epoch": stopped,
            "images_trained_on_resume": trained,
            "images_trained_straight": straight,
            "max_label_quality_gap_vs_straight": round(gap, 6),
        }

    def two_on_one_gpu(self) -> dict:
        if self.cpu:
            return {"ok": True, "skipped": "needs CUDA"}
        import torch

        if torch.cuda.device_count() >= 2:
            return {
                "ok": True,
                "skipped": "this machine has 2+ GPUs: run tests/test_training_ddp.py",
            }
        done = self.fc(
            "score",
            str(self.work / "g48"),
            "--out",
            str(self.work / "r-two"),
            "train.epochs=1",
            torchrun=2,
            check=False,
        )
        said = done.stdout + done.stderr
        return {
            "ok": done.returncode != 0 and "--nproc_per_node" in said,
            "exit": done.returncode,
            "names_the_fix": "--nproc_per_node" in said,
        }

    def paper_throughput(self) -> dict:
        run = self.work / "r-paper"
        self.fc(
            "score",
            str(self.work / "g224"),
            "--recipe",
            "paper",
            "--out",
            str(run),
            "train.epochs=3",
            "train.folds=1",
            *self.device,
        )
        info = self.run_info(run)
        images_per_s = info["training"][0]["images_per_s"]
        passes = 5 * 40 * 100_000  # the recipe: 5 folds x 40 epochs, per 100k images
        return {
            "ok": True,
            "device": info["device"],
            "precision": info["precision"],
            "train_images_per_s": images_per_s,
            "projected_gpu_hours_per_100k": round(passes / images_per_s / 3600, 2),
            "timings": info["timings"],
        }


if __name__ == "__main__":
    sys.exit(main())
