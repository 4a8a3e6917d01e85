"""samples/ConvNet_MNIST.py --engine cntk: real (short) training runs with CNTK.

CNTK 2.7 needs Python <= 3.6, so it runs in its own interpreter, named by the environment variable
CNTK_PYTHON; without it (or when that interpreter cannot import cntk) these tests are skipped.
LD_LIBRARY_PATH is passed through (CNTK's wheel links to Open MPI 1.10's libmpi_cxx.so.1/libmpi.so.12).
scripts/setup_cntk.sh makes such an interpreter and prints both variables:

    eval "$(scripts/setup_cntk.sh | tail -n 1)"; .venv/bin/python -m pytest tests/test_sample_cntk.py
"""
import csv
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from doc_blocks import code_block
from sample_checks import check_sigterm_stops_promptly, epoch_results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'samples' / 'ConvNet_MNIST.py'
SMALL = ROOT / 'tests' / 'data' / 'mnist-small'           # first 2000 train / 500 test images
SEED = 0

# Loads a checkpoint with CNTK, evaluates it on the test file and saves the outputs for 8 images.
EVALUATE = '''
import sys
import numpy as np
import cntk
model, test_file, out = sys.argv[1:4]
from ConvNet_MNIST import read_ctf  # samples/ is on PYTHONPATH
x, y = read_ctf(test_file)
z = cntk.load_model(model)
logits = np.asarray(z.eval({z.arguments[0]: x.reshape(-1, 1, 28, 28).astype(np.float32)})).reshape(len(y), -1)
np.save(out, logits[:8])
print(int((logits.argmax(axis=1) != y).sum()))
'''


def load_sample():
    """samples/ConvNet_MNIST.py as a module."""
    spec = importlib.util.spec_from_file_location('ConvNet_MNIST', str(SCRIPT))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def cntk_python():
    python = os.environ.get('CNTK_PYTHON')
    if not python:
        pytest.skip('CNTK_PYTHON is not set: eval "$(scripts/setup_cntk.sh | tail -n 1)" sets it '
                    '(a Python 3.6 with CNTK 2.7) and LD_LIBRARY_PATH')
    try:
        result = subprocess.run([python, '-c', 'import cntk'], capture_output=True, text=True, timeout=120)
    except OSError as e:
        pytest.skip('CNTK_PYTHON={}: cannot run it: {}'.format(python, e))
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ['exit code {}'.format(result.returncode)])[-1]
        pytest.skip('CNTK_PYTHON={} cannot import cntk: {}'.format(python, last))
    return python


@pytest.fixture(scope='module')
def ctf_dir(cntk_python, tmp_path_factory):
    from batchai_quickstart.mnist import prepare_mnist
    out = tmp_path_factory.mktemp('cntk') / 'data'
    prepare_mnist(out, mnist_dir=SMALL, log=lambda *args: None)
    return out


def run_cntk(python, *args, timeout=300):
    return subprocess.run([python, str(SCRIPT)] + [str(a) for a in args] + ['--engine', 'cntk'],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


@pytest.fixture(scope='module')
def trained(cntk_python, ctf_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp('cntk-models') / 'out'     # created by the script
    return run_cntk(cntk_python, ctf_dir, model_dir, '--epochs', 1, '--seed', SEED), model_dir


def has_matplotlib(python):
    return subprocess.run([python, '-c', 'import matplotlib'], capture_output=True).returncode == 0


def final_error(stderr):
    final = [l for l in stderr.splitlines() if l.startswith('Final Results')]
    assert len(final) == 1, stderr
    match = re.fullmatch(r'Final Results: Minibatch\[1-2\]: errs = (\d+\.\d\d)% \* 500', final[0])
    assert match, final[0]
    return float(match.group(1))


def test_cntk_training_log_and_output_files(trained, cntk_python):
    result, model_dir = trained
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''                  # everything, CNTK's own lines too, goes to stderr, like on Batch AI
    lines = result.stderr.splitlines()
    start = lines.index('Training 98778 parameters in 10 parameter tensors.')
    # then the blank line of the original, and the CNTK learner's own schedule lines
    assert lines[start + 1:start + 4] == ['', 'Learning rate per 1 samples: 0.001', 'Momentum per 1 samples: 0.0']
    epoch_lines = [l for l in lines if l.startswith('Finished Epoch')]
    assert len(epoch_lines) == 1
    match = re.fullmatch(r'Finished Epoch\[1 of 1\]: \[Training\] loss = (\d+\.\d{6}) \* 2000, '
                         r'metric = (\d+\.\d\d)% \* 2000 \d+\.\d{3}s \(\d+\.\d samples/s\);', epoch_lines[0])
    assert match, epoch_lines[0]
    # measured 41-66% for seeds 0-7 after one epoch of 2000 images (an untrained network: about 90%)
    assert final_error(result.stderr) < 80.0

    names = sorted(os.listdir(str(model_dir)))
    expected = ['ConvNet_MNIST.onnx', 'ConvNet_MNIST_0.dnn', 'ConvNet_MNIST_metrics.csv']
    if has_matplotlib(cntk_python):
        expected.append('ConvNet_MNIST_training.png')
        assert (model_dir / 'ConvNet_MNIST_training.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    else:
        assert 'matplotlib is not installed: skipping ConvNet_MNIST_training.png' in lines
    assert names == sorted(expected)
    assert not [l for l in lines if l.startswith('warning:')]     # the ONNX export worked
    with open(str(model_dir / 'ConvNet_MNIST_metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [r['epoch'] for r in rows] == ['1'] and rows[0]['learning_rate'] == '0.001'
    # the CSV's sums and CNTK's ProgressPrinter agree
    assert float(rows[0]['loss']) == pytest.approx(float(match.group(1)), abs=2e-6)
    assert 100.0 * float(rows[0]['error']) == pytest.approx(float(match.group(2)), abs=0.006)


def test_cntk_checkpoint_and_onnx_model_agree(trained, cntk_python, ctf_dir, tmp_path):
    result, model_dir = trained
    assert result.returncode == 0, result.stderr
    outputs = tmp_path / 'logits.npy'
    evaluated = subprocess.run([cntk_python, '-c', EVALUATE, str(model_dir / 'ConvNet_MNIST_0.dnn'),
                                str(ctf_dir / 'Test-28x28_cntk_text.txt'), str(outputs)],
                               capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                   filter(None, [str(SCRIPT.parent), os.environ.get('PYTHONPATH')]))))
    assert evaluated.returncode == 0, evaluated.stderr
    # the last checkpoint is the model that was tested
    assert int(evaluated.stdout.split()[-1]) / 5.0 == pytest.approx(final_error(result.stderr), abs=0.001)

    onnx = pytest.importorskip('onnx')
    from onnx.reference import ReferenceEvaluator
    read_ctf = load_sample().read_ctf
    onnx_model = onnx.load(str(model_dir / 'ConvNet_MNIST.onnx'))
    onnx.checker.check_model(onnx_model)
    x, _ = read_ctf(str(ctf_dir / 'Test-28x28_cntk_text.txt'))
    pixels = x[:8].reshape(8, 1, 28, 28).astype(np.float32)          # raw pixels, scaled by the model
    evaluator = ReferenceEvaluator(onnx_model)
    # CNTK's exporter drops the batch axis: one image at a time, input "features" (1, 1, 28, 28)
    got = np.concatenate([evaluator.run(None, {'features': pixels[k:k + 1]})[0].reshape(1, -1) for k in range(8)])
    np.testing.assert_allclose(got, np.load(str(outputs)), rtol=1e-4, atol=1e-4)


def test_cntk_seed_makes_runs_repeatable(trained, cntk_python, ctf_dir, tmp_path):
    first, first_dir = trained
    second = run_cntk(cntk_python, ctf_dir, tmp_path / 'models', '--epochs', 1, '--seed', SEED)
    assert second.returncode == 0, second.stderr

    assert epoch_results(second.stderr) == epoch_results(first.stderr) and len(epoch_results(first.stderr)) == 2
    checkpoint = 'ConvNet_MNIST_0.dnn'
    assert (tmp_path / 'models' / checkpoint).read_bytes() == (first_dir / checkpoint).read_bytes()


def test_cntk_sigterm_stops_promptly_with_complete_files(cntk_python, ctf_dir, tmp_path):
    check_sigterm_stops_promptly(cntk_python, ctf_dir, tmp_path / 'models', 'cntk', 'ConvNet_MNIST_0.dnn')


def test_cntk_distributed_learner_on_two_mpi_ranks(cntk_python, ctf_dir, tmp_path):
    """As Batch AI's cntkSettings with processCount 2: two ranks under mpirun, CNTK's data-parallel learner,
    rank 0 alone logging and writing. CNTK 2.7's libmpi is Open MPI 1.10's (served by Open MPI 4 here),
    so its ranks need that family's mpirun, not the openmpi 5 package's."""
    import shutil
    mpirun = shutil.which('orterun') or shutil.which('mpirun.openmpi')
    if mpirun is None:
        pytest.skip("no Open MPI 4 mpirun (Debian: apt-get install openmpi-bin) for CNTK 2.7's libmpi")
    model_dir = tmp_path / 'models'
    command = [mpirun, '-np', '2', '--bind-to', 'none', '-x', 'LD_LIBRARY_PATH', '-x', 'OMP_NUM_THREADS=1']
    if os.geteuid() == 0:
        command.append('--allow-run-as-root')
    command += [cntk_python, str(SCRIPT), str(ctf_dir), str(model_dir), '--epochs', '2', '--seed', str(SEED),
                '--engine', 'cntk']
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count('Finished Epoch[1 of 2]') == 1 and output.count('Finished Epoch[2 of 2]') == 1
    assert output.count('Training 98778 parameters in 10 parameter tensors.') == 1
    assert final_error(output) < 60.0                   # 2 epochs on 2000 images: about 35%; untrained about 90%
    names = sorted(os.listdir(str(model_dir)))
    assert {'ConvNet_MNIST_0.dnn', 'ConvNet_MNIST_1.dnn', 'ConvNet_MNIST_metrics.csv'} <= set(names)
    assert not [n for n in names if n.startswith('.')]


def test_the_documented_cntk_command_trains(cntk_python, ctf_dir, tmp_path):
    """docs/cntk.md's last line, ``$CNTK_PYTHON samples/ConvNet_MNIST.py data/mnist-cntk /tmp/cntk-models --epochs 2
    --engine cntk``, with the MNIST subset's files and a temporary model directory."""
    *_, command = code_block('docs/cntk.md', 'The CNTK path', 'sh').strip().splitlines()
    words = command.split()
    assert words == ['$CNTK_PYTHON', 'samples/ConvNet_MNIST.py', 'data/mnist-cntk', '/tmp/cntk-models', '--epochs', '2',
                     '--engine', 'cntk'], words
    model_dir = tmp_path / 'cntk-models'
    result = run_cntk(cntk_python, ctf_dir, model_dir, *words[4:6])  # run_cntk adds --engine cntk
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Finished Epoch[2 of 2]' in result.stderr and final_error(result.stderr) < 60.0
    assert (model_dir / 'ConvNet_MNIST_1.dnn').exists()
