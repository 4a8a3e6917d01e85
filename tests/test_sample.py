"""samples/ConvNet_MNIST.py: syntax, network, optimizer, reader errors, and real (short) training runs."""
import ast
import csv
import gzip
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sample_checks import check_sigterm_stops_promptly, epoch_results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'samples' / 'ConvNet_MNIST.py'
SMALL = ROOT / 'tests' / 'data' / 'mnist-small'           # first 2000 train / 500 test images
FULL = ROOT.parent / 'shared' / 'data' / 'mnist'         # (../shared) fallback: the same subset cut from the full files
EPOCHS = 6                                                # on 2000 images; epoch 6 switches momentum on


def load_sample():
    spec = importlib.util.spec_from_file_location('ConvNet_MNIST', str(SCRIPT))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_idx(path):
    data = gzip.open(str(path)).read()
    dims = np.frombuffer(data, '>u4', data[3], 4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def write_ctf(path, images, labels):
    with open(str(path), 'w') as f:
        for image, label in zip(images.reshape(len(images), -1), labels):
            f.write('|labels {} |features {}\n'.format(
                ' '.join('1' if k == label else '0' for k in range(10)), ' '.join(map(str, image.tolist()))))


@pytest.fixture(scope='module')
def ctf_dir(tmp_path_factory):
    """Train-/Test-28x28_cntk_text.txt with 2000 / 500 real MNIST images (the project's converter when
    it is there, else the small writer above)."""
    out = tmp_path_factory.mktemp('mnist-ctf')
    if (SMALL / 'train-images-idx3-ubyte.gz').exists():
        try:
            from batchai_quickstart.mnist import prepare_mnist
        except ImportError:
            pass
        else:
            prepare_mnist(out, mnist_dir=SMALL, log=lambda *args: None)
            return out
    source = SMALL if (SMALL / 'train-images-idx3-ubyte.gz').exists() else FULL
    for name, prefix, count in (('Train', 'train', 2000), ('Test', 't10k', 500)):
        images = read_idx(source / '{}-images-idx3-ubyte.gz'.format(prefix))[:count]
        labels = read_idx(source / '{}-labels-idx1-ubyte.gz'.format(prefix))[:count]
        write_ctf(out / '{}-28x28_cntk_text.txt'.format(name), images, labels)
    return out


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def trained(ctf_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp('models') / 'out'    # created by the script
    started = time.time()
    result = run_script(ctf_dir, model_dir, '--epochs', EPOCHS, '--seed', 7, '--engine', 'pytorch')
    return result, model_dir, time.time() - started


# ------------------------------------------------------------------------------ static checks

def test_whole_file_is_python35_syntax():
    source = SCRIPT.read_text()
    tree = ast.parse(source, feature_version=(3, 5))
    top_level_imports = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level_imports.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top_level_imports.add((node.module or '').split('.')[0])
    assert not top_level_imports & {'torch', 'cntk', 'matplotlib', 'onnx'}


def test_network_has_98778_parameters_in_10_tensors():
    import torch
    model = load_sample().build_torch_model()
    params = list(model.parameters())
    assert (sum(p.numel() for p in params), len(params)) == (98778, 10)
    assert [tuple(p.shape) for p in params[::2]] == [(32, 1, 5, 5), (48, 32, 3, 3), (64, 48, 3, 3), (96, 576),
                                                     (10, 96)]
    assert all(float(b.detach().abs().sum()) == 0 for b in params[1::2])      # zero biases
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_schedules_are_the_originals():
    sample = load_sample()
    lrs = [sample.schedule_value(sample.LR_PER_SAMPLE, e) for e in range(40)]
    assert lrs == [0.001] * 10 + [0.0005] * 10 + [0.0001] * 20
    momenta = [sample.momentum_per_sample(e) for e in range(40)]
    assert momenta[:5] == [0.0] * 5 and momenta[5:] == [pytest.approx(0.9990239141819757, abs=1e-15)] * 35


# ------------------------------------------------------------------------------ optimizer

def test_unit_gain_momentum_matches_cntk_formula():
    """Toy parameter, a few steps, lr and momentum change in between: c = m c + (1-m) g; w -= lr c."""
    import torch
    sample = load_sample()
    rng = np.random.RandomState(0)
    a, w0 = rng.randn(4, 3), rng.randn(3)
    w = torch.tensor(w0, requires_grad=True)
    c = torch.zeros_like(w)
    w_ref, c_ref = w0.copy(), np.zeros(3)
    steps = [(0.1, 0.0), (0.1, 0.0), (0.05, 0.9), (0.05, 0.9), (0.05, 0.5)]
    for lr, m in steps:
        w.grad = None
        (torch.tensor(a) @ w).pow(2).sum().backward()
        sample.unit_gain_momentum_step([w], [c], lr, m)
        g_ref = 2 * a.T @ (a @ w_ref)
        c_ref = m * c_ref + (1 - m) * g_ref
        w_ref = w_ref - lr * c_ref
        np.testing.assert_allclose(w.detach().numpy(), w_ref, rtol=1e-12)

    # Why not plain torch.optim.SGD(momentum=m, dampening=m): its first step uses the undampened gradient.
    w2 = torch.tensor(w0, requires_grad=True)
    (torch.tensor(a) @ w2).pow(2).sum().backward()
    torch.optim.SGD([w2], lr=0.05, momentum=0.9, dampening=0.9).step()
    assert not np.allclose(w2.detach().numpy(), w0 - 0.05 * 0.1 * 2 * a.T @ (a @ w0))


def test_training_epoch_uses_summed_loss_and_per_sample_momentum():
    """torch_train_epoch = the CNTK update with m = m_sample ** n for each minibatch (64, then a clipped 32)."""
    import copy
    import torch
    import torch.nn.functional as F
    sample = load_sample()
    torch.manual_seed(0)
    model = sample.build_torch_model().double()
    reference = copy.deepcopy(model)
    x = torch.rand(96, 1, 28, 28, dtype=torch.float64) * 255
    y = torch.randint(0, 10, (96,))
    order = torch.randperm(96)
    buffers = [torch.zeros_like(p) for p in model.parameters()]
    m_sample, lr = 0.99, 0.001

    torch.manual_seed(1)                                   # same dropout masks in both
    sample.torch_train_epoch(model, buffers, x, y, order, lr, 0.0, 64)
    sample.torch_train_epoch(model, buffers, x, y, order, lr / 2, m_sample, 64)

    torch.manual_seed(1)
    reference.train()
    c = [np.zeros(p.shape) for p in reference.parameters()]
    for m_epoch, lr_epoch in ((0.0, lr), (m_sample, lr / 2)):
        for index in (order[:64], order[64:]):
            for p in reference.parameters():
                p.grad = None
            F.cross_entropy(reference(x[index]), y[index], reduction='sum').backward()
            m = m_epoch ** len(index)
            with torch.no_grad():
                for k, p in enumerate(reference.parameters()):
                    c[k] = m * c[k] + (1 - m) * p.grad.numpy()
                    p -= torch.from_numpy(lr_epoch * c[k])
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------ reader

def test_reader_reads_the_ctf_files(ctf_dir):
    sample = load_sample()
    x, y = sample.read_ctf(str(ctf_dir / 'Train-28x28_cntk_text.txt'))
    source = SMALL if (SMALL / 'train-images-idx3-ubyte.gz').exists() else FULL
    assert x.dtype == np.uint8 and x.shape == (2000, 784)
    np.testing.assert_array_equal(x, read_idx(source / 'train-images-idx3-ubyte.gz')[:2000].reshape(2000, 784))
    np.testing.assert_array_equal(y, read_idx(source / 'train-labels-idx1-ubyte.gz')[:2000])


def test_reader_accepts_other_field_order_and_blanks(tmp_path):
    sample = load_sample()
    features = ' '.join(str(k % 256) for k in range(784))
    path = tmp_path / 'f.txt'
    path.write_bytes('|labels 0 0 1 0 0 0 0 0 0 0 |features {}\r\n\n|features {}\t|labels 0 0 0 0 0 0 0 0 0 1'
                     .format(features, features).encode())
    x, y = sample.read_ctf(str(path))
    assert y.tolist() == [2, 9] and x.shape == (2, 784) and x[1, 255] == 255 and x[1, 256] == 0


def bad_line(line, case):
    labels, features = line.split('|features ')
    values = features.split()
    if case == 'feature count':
        return labels + '|features ' + ' '.join(values[:-1])
    if case == 'bad label':
        return '|labels 0 0 2 0 0 0 0 0 0 0 |features ' + features
    if case == 'non-numeric':
        values[100] = 'x7'
        return labels + '|features ' + ' '.join(values)
    if case == 'missing features':
        return labels
    if case == 'out of range':
        values[5] = '256'
        return labels + '|features ' + ' '.join(values)
    raise ValueError(case)


@pytest.mark.parametrize('case, message', [
    ('feature count', 'expected 784 features, found 783'),
    ('bad label', "bad label value '2'"),
    ('non-numeric', "non-numeric feature value 'x7'"),
    ('missing features', "missing '|features' field"),
    ('out of range', "feature value '256' out of range"),
])
def test_malformed_line_is_a_one_line_error_with_exit_code_2(ctf_dir, tmp_path, case, message):
    lines = (ctf_dir / 'Train-28x28_cntk_text.txt').read_text().splitlines()[:1500]
    lines[1300] = bad_line(lines[1300], case)              # line 1301, in the second reader chunk
    (tmp_path / 'Train-28x28_cntk_text.txt').write_text('\n'.join(lines) + '\n')
    (tmp_path / 'Test-28x28_cntk_text.txt').write_text('')
    result = run_script(tmp_path, tmp_path / 'models')
    assert result.returncode == 2
    assert re.fullmatch(r'error: ' + re.escape(str(tmp_path / 'Train-28x28_cntk_text.txt')) + ' line 1301: '
                        + re.escape(message) + r'[^\n]*\n', result.stderr)
    assert not (tmp_path / 'models').exists()


def test_missing_data_file_is_a_one_line_error(tmp_path):
    result = run_script(tmp_path, tmp_path / 'models')
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: data file not found: {}'.format(tmp_path / 'Train-28x28_cntk_text.txt')


def test_engine_cntk_without_cntk_is_a_one_line_error(ctf_dir, tmp_path):
    pytest.importorskip('torch')
    if importlib.util.find_spec('cntk') is not None:
        pytest.skip('cntk is installed here')
    result = run_script(ctf_dir, tmp_path / 'models', '--engine', 'cntk')
    assert result.returncode == 2
    assert re.fullmatch(r"error: --engine cntk: cannot import cntk \(.*\)\n", result.stderr)


# ------------------------------------------------------------------------------ training runs

def test_training_output_files_and_accuracy(trained):
    result, model_dir, seconds = trained
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''                               # everything goes to stderr, like on Batch AI
    lines = result.stderr.splitlines()
    assert 'Training 98778 parameters in 10 parameter tensors.' in lines
    assert lines[lines.index('Training 98778 parameters in 10 parameter tensors.') + 1] == ''
    assert lines.count('Learning rate per 1 samples: 0.001') == 1
    assert 'Momentum per 1 samples: 0.0' in lines and 'Momentum per 1 samples: 0.9990239141819757' in lines
    epoch_lines = [l for l in lines if l.startswith('Finished Epoch')]
    assert len(epoch_lines) == EPOCHS
    for k, line in enumerate(epoch_lines):
        assert re.fullmatch(r'Finished Epoch\[{} of {}\]: \[Training\] loss = \d+\.\d{{6}} \* 2000, '
                            r'metric = \d+\.\d\d% \* 2000 \d+\.\d{{3}}s \(\d+\.\d samples/s\);'
                            .format(k + 1, EPOCHS), line)
    final = [l for l in lines if l.startswith('Final Results')]
    assert len(final) == 1
    match = re.fullmatch(r'Final Results: Minibatch\[1-2\]: errs = (\d+\.\d\d)% \* 500', final[0])
    assert match
    # measured 7.6-10.2% for seeds 1-3 (an untrained network: about 90%)
    assert float(match.group(1)) <= 20.0

    names = sorted(os.listdir(str(model_dir)))
    assert names == sorted(['ConvNet_MNIST_{}.pt'.format(e) for e in range(EPOCHS)] + [
        'ConvNet_MNIST.onnx', 'ConvNet_MNIST_metrics.csv', 'ConvNet_MNIST_training.png'])
    with open(str(model_dir / 'ConvNet_MNIST_metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ['epoch', 'loss', 'error', 'learning_rate', 'seconds']
    assert [int(r['epoch']) for r in rows] == list(range(1, EPOCHS + 1))
    assert float(rows[-1]['error']) < float(rows[0]['error']) <= 1.0
    assert (model_dir / 'ConvNet_MNIST_training.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_checkpoint_and_onnx_model_agree(trained, ctf_dir):
    import onnx
    import torch
    from onnx.reference import ReferenceEvaluator
    _, model_dir, _ = trained
    sample = load_sample()
    model = sample.build_torch_model()
    model.load_state_dict(torch.load(str(model_dir / 'ConvNet_MNIST_{}.pt'.format(EPOCHS - 1)))['model'])
    onnx_model = onnx.load(str(model_dir / 'ConvNet_MNIST.onnx'))
    onnx.checker.check_model(onnx_model)
    x, _ = sample.read_ctf(str(ctf_dir / 'Test-28x28_cntk_text.txt'))
    pixels = x[:8].reshape(8, 1, 28, 28).astype(np.float32)             # raw pixels, scaled by the model
    expected = model.eval()(torch.from_numpy(pixels)).detach().numpy()
    got = ReferenceEvaluator(onnx_model).run(None, {'features': pixels})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_seed_makes_runs_repeatable(trained, ctf_dir, tmp_path):
    first, _, _ = trained
    second = run_script(ctf_dir, tmp_path / 'models', '--epochs', EPOCHS, '--seed', 7, '--engine', 'pytorch')
    assert second.returncode == 0, second.stderr

    assert epoch_results(second.stderr) == epoch_results(first.stderr)
    assert len(epoch_results(first.stderr)) == EPOCHS + 1


def test_sigterm_stops_promptly_with_complete_files(ctf_dir, tmp_path):
    check_sigterm_stops_promptly(sys.executable, ctf_dir, tmp_path / 'models', 'pytorch', 'ConvNet_MNIST_0.pt')


def test_resumed_run_ends_as_the_uninterrupted_one(trained, ctf_dir, tmp_path):
    """Stopped after epoch 3 (checkpoints 0-2 kept), rerun with the same command line: it resumes
    after the newest checkpoint and ends with the uninterrupted run's epochs, test error and weights."""
    import torch
    first, first_dir, _ = trained
    model_dir = tmp_path / 'models'
    partial = run_script(ctf_dir, model_dir, '--epochs', 3, '--seed', 7, '--engine', 'pytorch')
    assert partial.returncode == 0, partial.stderr
    for name in ('ConvNet_MNIST.onnx', 'ConvNet_MNIST_training.png'):
        (model_dir / name).unlink()
    resumed = run_script(ctf_dir, model_dir, '--epochs', EPOCHS, '--seed', 7, '--engine', 'pytorch')
    assert resumed.returncode == 0, resumed.stderr
    assert 'Resumed from {} (epoch 3 of {} done).'.format(model_dir / 'ConvNet_MNIST_2.pt', EPOCHS) \
        in resumed.stderr.splitlines()
    assert epoch_results(resumed.stderr) == epoch_results(first.stderr)[3:]
    with open(str(model_dir / 'ConvNet_MNIST_metrics.csv')) as f:
        assert [int(r['epoch']) for r in csv.DictReader(f)] == list(range(1, EPOCHS + 1))
    last = 'ConvNet_MNIST_{}.pt'.format(EPOCHS - 1)
    expected, got = torch.load(str(first_dir / last))['model'], torch.load(str(model_dir / last))['model']
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


def test_no_resume_starts_over_and_old_checkpoints_are_refused(ctf_dir, tmp_path):
    import torch
    model_dir = tmp_path / 'models'
    model_dir.mkdir()
    sample = load_sample()
    torch.save(sample.state_dict_on_cpu(sample.build_torch_model()), str(model_dir / 'ConvNet_MNIST_0.pt'))
    refused = run_script(ctf_dir, model_dir, '--epochs', 2, '--seed', 7, '--engine', 'pytorch')
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        'error: cannot resume from {}: it holds only weights (an older ConvNet_MNIST.py); '
        'pass --no-resume to start over'.format(model_dir / 'ConvNet_MNIST_0.pt'))
    fresh = run_script(ctf_dir, model_dir, '--epochs', 1, '--seed', 7, '--engine', 'pytorch', '--no-resume')
    assert fresh.returncode == 0, fresh.stderr
    assert 'Resumed' not in fresh.stderr
    assert torch.load(str(model_dir / 'ConvNet_MNIST_0.pt'))['epoch'] == 0
