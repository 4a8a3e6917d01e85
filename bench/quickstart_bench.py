#!/usr/bin/env python3
"""The quickstarts' overhead: each local end-to-end run against running the sample directly.

All train ConvNet_MNIST.py on the same data for the same epochs, in this run. An end-to-end
run adds the emulator, the upload, the cluster, the job and the monitoring; the goal is an
overhead of at most 15 s or 1.15x, whichever is larger, for quickstart.py (Batch AI) and
quickstart_azureml.py (Azure Machine Learning) alike.

Then ``quickstart.py --target azure`` through the emulator's HTTPS proxy (Azure's hostnames, Azure AD
sign-in, TLS to the proxy) against the local target's run: goal at most 1.1x. That emulator is started
before the run; its start is counted in, as the local target's run counts the start of its own.

Usage: python bench/quickstart_bench.py [--mnist-dir DIR] [--epochs N] [--rounds R] [--smoke]
(--smoke: the small MNIST subset in tests/data, to check that the benchmark still runs; its figures mean nothing)
"""
from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command, cwd, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def proxy_env(emu) -> dict:
    """This process's environment as ``eval "$(python -m emulator.shellenv ...)"`` leaves a shell."""
    from emulator.shellenv import EXPORTED, UNSET

    env = {name: value for name, value in os.environ.items() if name not in EXPORTED + UNSET}
    env.update(HTTPS_PROXY=emu.https_proxy, https_proxy=emu.https_proxy, REQUESTS_CA_BUNDLE=emu.proxy_ca_bundle,
               SSL_CERT_FILE=emu.proxy_ca_bundle)
    return env


def time_azure_target(work: Path, mnist_dir: Path, epochs: int) -> tuple:
    """(seconds of quickstart.py --target azure through the proxy, seconds the emulator took to start)."""
    import emulator
    from batchai_quickstart.emulator_config import write_config

    start = time.perf_counter()
    with emulator.start(work / "proxied-emulator-data", proxy=True) as emu:
        started = time.perf_counter() - start
        config = write_config(emu.describe(), work / "azure.ini", {("resources", "admin_user_password"): None})
        seconds = timed([sys.executable, str(ROOT / "quickstart.py"), "--target", "azure", "--config", str(config),
                         "--mnist-dir", str(mnist_dir), "--epochs", str(epochs)], work, proxy_env(emu))
    return seconds, started


def main() -> int:
    default_mnist = ROOT.parent / "shared" / "data" / "mnist"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path,
                        default=default_mnist if default_mnist.is_dir() else ROOT / "tests" / "data" / "mnist-small")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all the runs (medians)")
    parser.add_argument("--smoke", action="store_true", help="the small MNIST subset: checks that the bench runs")
    args = parser.parse_args()
    if args.smoke:
        args.mnist_dir, args.epochs, args.rounds = ROOT / "tests" / "data" / "mnist-small", 1, 1
    from batchai_quickstart.mnist import prepare_mnist

    with tempfile.TemporaryDirectory(prefix="quickstart-bench-") as tmp:
        work = Path(tmp)
        # The data conversion is done once, before both runs: the quickstart finds it prepared.
        data = work / "data" / "mnist-cntk"
        prepare_mnist(data, mnist_dir=args.mnist_dir, log=lambda *a, **k: None)
        config = configparser.ConfigParser(interpolation=None)
        config.read(ROOT / "config.example.ini")
        config.set("local", "data_dir", str(work / "emulator-data"))
        with open(work / "config.ini", "w") as f:
            config.write(f)

        # Rounds interleave the runs, so that a machine busy with other work slows them all alike; medians.
        runs: dict = {"direct": [], "quickstart.py": [], "quickstart_azureml.py": [], "azure": [], "start": []}
        for round_number in range(args.rounds):
            runs["direct"].append(timed([sys.executable, str(ROOT / "samples" / "ConvNet_MNIST.py"), str(data),
                                         str(work / "models-{}".format(round_number)),  # no checkpoint to resume
                                         "--epochs", str(args.epochs)], work))
            for script in ("quickstart.py", "quickstart_azureml.py"):
                runs[script].append(timed([sys.executable, str(ROOT / script), "--config", str(work / "config.ini"),
                                           "--mnist-dir", str(args.mnist_dir), "--epochs", str(args.epochs)], work))
            azure_seconds, start_seconds = time_azure_target(work, args.mnist_dir, args.epochs)
            runs["azure"].append(azure_seconds)
            runs["start"].append(start_seconds)
    direct, azure, emulator_start = (statistics.median(runs[name]) for name in ("direct", "azure", "start"))
    end_to_end = {script: statistics.median(runs[script]) for script in ("quickstart.py", "quickstart_azureml.py")}
    allowed = max(15.0, 0.15 * direct)
    print("data: {}  epochs: {}  medians of {} interleaved round(s); load average {:.1f} at the end".format(
        args.mnist_dir, args.epochs, args.rounds, os.getloadavg()[0]))
    print("sample run directly:     {:8.2f} s".format(direct))
    for script, seconds in end_to_end.items():
        overhead = seconds - direct
        print("{:<24} {:8.2f} s  overhead {:6.2f} s  ratio {:.3f}x  (goal: <= {:.1f} s)  {}".format(
            script + ":", seconds, overhead, seconds / direct, allowed, "OK" if overhead <= allowed else "OVER"))
    # The local target's run starts its emulator inside; so that the two compare alike, the proxied
    # emulator's start is counted in (the ratio without it is printed too).
    local, counted = end_to_end["quickstart.py"], azure + emulator_start
    print("quickstart.py --target azure, through the emulator's proxy: {:.2f} s + the emulator's start {:.2f} s "
          "= {:.2f} s  ratio to the local target {:.3f}x  (goal: <= 1.1x)  {}  (without the start: {:.3f}x)".format(
              azure, emulator_start, counted, counted / local, "OK" if counted <= 1.1 * local else "OVER",
              azure / local))
    return 0


if __name__ == "__main__":
    sys.exit(main())
