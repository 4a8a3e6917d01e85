"""Checks of samples/ConvNet_MNIST.py shared by its PyTorch and CNTK tests."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'samples' / 'ConvNet_MNIST.py'


def epoch_results(stderr):
    """The epoch lines and the final line without their timings: what a seed must reproduce."""
    return [re.sub(r' \d+\.\d+s \(.*', '', line) for line in stderr.splitlines()
            if line.startswith(('Finished Epoch', 'Final Results'))]


def check_sigterm_stops_promptly(python, ctf_dir, model_dir, engine, checkpoint):
    """SIGTERM during the second epoch: exit 143 within 3 s, the first checkpoint complete, no temporary files."""
    process = subprocess.Popen([str(python), str(SCRIPT), str(ctf_dir), str(model_dir), '--epochs', '1000',
                                '--engine', engine], stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        for line in process.stderr:                          # after a checkpoint, during the next epoch
            if line.startswith('Finished Epoch[1 of'):
                break
        time.sleep(0.2)
        sent = time.time()
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[1]
        elapsed = time.time() - sent
    finally:
        process.kill()
    assert process.returncode == 143, output
    assert elapsed < 3.0                # typically 0.1-0.5 s, mostly interpreter shutdown; margin for a busy machine
    assert output.strip().splitlines()[-1].startswith('Terminated (SIGTERM)')
    names = os.listdir(str(model_dir))
    assert checkpoint in names and 'ConvNet_MNIST_metrics.csv' in names
    assert not [n for n in names if n.endswith('.tmp') or n.startswith('.')]
