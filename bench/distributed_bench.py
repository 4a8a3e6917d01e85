#!/usr/bin/env python3
"""Data-parallel ConvNet_MNIST on emulated nodes: one epoch on 1 node x 2T threads against 2 nodes x T
threads of the same machine (T = 1 by default: the 2 cores here), in this run.

- 1 node x 2T threads and 1 node x T threads: the sample run directly (one process);
- 2 nodes x T threads: ``quickstart.py --nodes 2``, the job's two ranks under mpirun on the emulator;
- the same two ranks exchanging gradients alone (one all-reduce of the model per global minibatch,
  gloo on loopback, as DDP does it) give the communication share of the 2-node epoch.
Throughput is the sample's own "samples/s" of the epoch (the training loop, not start-up).
Goal: 2 nodes x T threads >= 0.9x the throughput of 1 node x 2T threads.
Rounds interleave the 1 node x 2T and 2-node runs, medians: other work on the machine moved the ratio
from 0.75x to 6.6x (libgomp's threads spin while they wait for each other, which a busy core punishes
far more than ranks that meet once a step), so only a quiet machine speaks to the goal.

Usage: python bench/distributed_bench.py [--mnist-dir DIR] [--threads T] [--rounds R] [--smoke]
(--smoke: the small MNIST subset in tests/data, to check that the benchmark still runs; its figures mean nothing)
"""
from __future__ import annotations

import argparse
import configparser
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "samples" / "ConvNet_MNIST.py"
EPOCH_LINE = re.compile(r"Finished Epoch\[1 of 1\].* (\d+\.\d+)s \((\d+\.\d+) samples/s\)")
FINAL_LINE = re.compile(r"Final Results: Minibatch\[1-\d+\]: errs = (\d+\.\d+)%")


def epoch_figures(output: str) -> tuple:
    """(seconds, samples/s, test error %) of the run's epoch and final lines."""
    match, final = EPOCH_LINE.search(output), FINAL_LINE.search(output)
    if match is None or final is None:
        raise SystemExit("no epoch or final line in the output:\n" + output[-3000:])
    return float(match.group(1)), float(match.group(2)), float(final.group(1))


def median_run(runs: list) -> tuple:
    """The run of median throughput (an odd count: that run; even: the faster of the middle two)."""
    ranked = sorted(runs, key=lambda figures: figures[1])
    return ranked[len(ranked) // 2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command, threads: int, cwd: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    result = subprocess.run(command, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        raise SystemExit("failed ({}):\n{}".format(" ".join(map(str, command)), result.stdout[-3000:]))
    return result.stdout


def exchange_only(rank: int, world_size: int, port: int, steps: int) -> None:
    """What DDP exchanges in the 2-node epoch, without the computation: one all-reduce of the model's
    gradients (one bucket) per global minibatch, over gloo on loopback. Prints seconds."""
    import torch
    import torch.distributed as dist
    spec = importlib.util.spec_from_file_location("ConvNet_MNIST", str(SCRIPT))
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    size = sum(p.numel() for p in sample.build_torch_model().parameters())
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:{}".format(port), rank=rank, world_size=world_size)
    gradients = torch.ones(size)
    dist.barrier()
    start = time.time()
    for _ in range(steps):
        dist.all_reduce(gradients)
    seconds = time.time() - start
    dist.destroy_process_group()
    print("{:.3f}".format(seconds))


def main() -> int:
    default_mnist = ROOT.parent / "shared" / "data" / "mnist"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path,
                        default=default_mnist if default_mnist.is_dir() else ROOT / "tests" / "data" / "mnist-small")
    parser.add_argument("--threads", type=int, default=1, help="threads per node of the 2-node run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of the 1-node and 2-node runs (medians)")
    parser.add_argument("--smoke", action="store_true", help="the small MNIST subset: checks that the bench runs")
    parser.add_argument("--exchange-only", nargs=4, type=int, metavar=("RANK", "WORLD", "PORT", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.exchange_only:
        exchange_only(*args.exchange_only)
        return 0
    from batchai_quickstart.mnist import prepare_mnist

    if args.smoke:
        args.mnist_dir, args.rounds = ROOT / "tests" / "data" / "mnist-small", 1

    threads = args.threads
    load_before = os.getloadavg()[0]
    args.mnist_dir = args.mnist_dir.resolve()  # quickstart.py runs in the work directory
    with tempfile.TemporaryDirectory(prefix="distributed-bench-") as tmp:
        work = Path(tmp)
        data = work / "data" / "mnist-cntk"                 # where quickstart.py looks for the prepared files
        prepare_mnist(data, mnist_dir=args.mnist_dir, log=lambda *a, **k: None)
        config = configparser.ConfigParser(interpolation=None)
        config.read(ROOT / "config.example.ini")
        config.set("local", "data_dir", str(work / "emulator-data"))
        with open(work / "config.ini", "w") as f:
            config.write(f)
        def sample(model_dir: str) -> list:  # a model directory each: the sample resumes from a checkpoint there
            return [sys.executable, str(SCRIPT), str(data), str(work / model_dir), "--epochs", "1", "--seed", "1",
                    "--engine", "pytorch"]

        one_narrow = epoch_figures(run(sample("models-narrow"), threads, work))

        def one_node(round_number: int) -> str:
            return run(sample("models-wide-{}".format(round_number)), 2 * threads, work)

        def two_nodes(round_number: int) -> str:
            return run([sys.executable, str(ROOT / "quickstart.py"), "--config", str(work / "config.ini"),
                        "--mnist-dir", str(args.mnist_dir), "--epochs", "1", "--nodes", "2"], threads, work)

        runs: dict = {one_node: [], two_nodes: []}
        for round_number in range(args.rounds):           # alternating order: each goes first as often
            for runner in (one_node, two_nodes) if round_number % 2 == 0 else (two_nodes, one_node):
                load = os.getloadavg()[0]
                output = runner(round_number)
                runs[runner].append(epoch_figures(output))
                print("round {}: {:<7} {:8.1f} samples/s  load average {:.1f} before, {:.1f} after".format(
                    round_number + 1, "1 node" if runner is one_node else "2 nodes", runs[runner][-1][1], load,
                    os.getloadavg()[0]), flush=True)
        one_wide, two = median_run(runs[one_node]), median_run(runs[two_nodes])
        epoch_size = int(re.search(r"\* (\d+) ", EPOCH_LINE.search(output).group(0)).group(1))   # any run's
        steps = -(-epoch_size // 64)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        port = str(free_port())
        ranks = [subprocess.Popen([sys.executable, __file__, "--exchange-only", str(rank), "2", port, str(steps)],
                                  env=env, stdout=subprocess.PIPE, text=True) for rank in (0, 1)]
        exchange = max(float(process.communicate()[0].strip().splitlines()[-1]) for process in ranks)

    print("data: {}  one epoch, global minibatch 64; medians of {} interleaved round(s); machine: {} cores, "
          "load average {:.1f} before, {:.1f} after (other work on the machine skews every figure)".format(
              args.mnist_dir, args.rounds, os.cpu_count(), load_before, os.getloadavg()[0]))
    print("1 node  x {} threads: {:8.1f} samples/s ({:.2f} s; test error {:.2f}%)".format(
        2 * threads, one_wide[1], one_wide[0], one_wide[2]))
    print("1 node  x {} thread{}:  {:8.1f} samples/s ({:.2f} s; test error {:.2f}%)".format(
        threads, "s" if threads > 1 else " ", one_narrow[1], one_narrow[0], one_narrow[2]))
    print("2 nodes x {} thread{}:  {:8.1f} samples/s ({:.2f} s; test error {:.2f}%; quickstart.py --nodes 2, "
          "mpirun + DDP/gloo)".format(threads, "s" if threads > 1 else " ", two[1], two[0], two[2]))
    ratio = two[1] / one_wide[1]
    print("2 nodes x {} vs 1 node x {}: {:.3f}x  (goal: >= 0.9x)  {}".format(
        threads, 2 * threads, ratio, "OK" if ratio >= 0.9 else "UNDER"))
    print("scaling efficiency (2 nodes vs 2 x 1 node, {} thread(s) each): {:.3f}".format(
        threads, two[1] / (2 * one_narrow[1])))
    print("communication share of the 2-node epoch: {:.1%} ({} gradient all-reduces alone take {:.2f} s of "
          "{:.2f} s)".format(exchange / two[0], steps, exchange, two[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
