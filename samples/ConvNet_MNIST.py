# Copyright (c) Microsoft. All rights reserved.
# Licensed under the MIT license.
# ==============================================================================
"""ConvNet_MNIST: the Azure Batch AI CNTK quickstart training script.

    python ConvNet_MNIST.py DATA_DIR MODEL_DIR [--epochs 40] [--minibatch-size 64]
                            [--engine auto|cntk|pytorch] [--seed S] [--no-resume]
                            [--world-size N --rank R --dist-url URL --dist-backend B]

DATA_DIR holds Train-28x28_cntk_text.txt and Test-28x28_cntk_text.txt (CNTK text
format, one image a line: "|labels <10 one-hot 0/1> |features <784 pixels 0-255>").
MODEL_DIR receives, like the original, a checkpoint per epoch (ConvNet_MNIST_{epoch}.dnn
with CNTK, ConvNet_MNIST_{epoch}.pt with PyTorch; epoch 0-based), plus
ConvNet_MNIST.onnx, ConvNet_MNIST_metrics.csv and ConvNet_MNIST_training.png.

The network, learning-rate and momentum schedules and the log lines are those of
CNTK's Examples/Image/Classification/ConvNet/Python/ConvNet_MNIST.py. Engine "auto"
uses CNTK when it can be imported (the Batch AI CNTK container) and PyTorch otherwise.

One deliberate difference: an epoch is one sweep over the training file (the
original hard-codes epoch_size = 60000, which is the same thing for full MNIST,
but keeps the schedules meaningful on a subset).

Resuming (PyTorch engine): when MODEL_DIR already holds checkpoints (a preempted
low-priority node's job rerun from the start of its command line), training continues
after the newest one: its weights, momentum buffers, random-number states, epoch and
metrics history are restored, so a seeded run ends as an uninterrupted one would.
--no-resume starts over. The CNTK engine always starts over. Data-parallel ranks all
resume with rank 0's random state (the checkpoint holds one), so there the resumed run is
equivalent, not bit-identical.

Data-parallel when started as one rank of several: under mpirun (OMPI_COMM_WORLD_*,
as Batch AI's MPI toolkits start it), with torch.distributed's RANK/WORLD_SIZE/MASTER_ADDR,
or with the Batch AI PyTorch recipe's --world-size/--rank/--dist-url/--dist-backend
($AZ_BATCHAI_TASK_INDEX, $AZ_BATCHAI_PYTORCH_INIT_METHOD, $AZ_BATCHAI_PYTORCH_BACKEND).
Every rank takes its share of each global minibatch (64 = 2 x 32 on 2 ranks), gradients
are summed across ranks (PyTorch DDP with gloo on CPU, nccl on GPU; CNTK's data-parallel
distributed learner), so the schedules and results are those of one process; only rank 0
logs and writes the outputs.

This file must stay valid Python 3.5 (the CNTK container's Python): no f-strings,
no variable annotations; torch and cntk are only imported inside their engines.
"""

from __future__ import print_function

import argparse
import math
import os
import random
import re
import signal
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor


class Terminated(SystemExit):
    """Raised by the SIGTERM handler: unwinds (temporary files are removed on the way)
    and ends the process with exit code 143 = 128 + SIGTERM."""


def _on_sigterm(signum, frame):
    if not _on_sigterm.terminating:                      # a second SIGTERM does not interrupt the cleanup
        _on_sigterm.terminating = True
        os.write(2, b'Terminated (SIGTERM): stopping; files written so far are complete.\n')
        raise Terminated(128 + signal.SIGTERM)


_on_sigterm.terminating = False
if __name__ == '__main__':                               # first thing, before the slow imports
    signal.signal(signal.SIGTERM, _on_sigterm)

import numpy as np  # noqa: E402

TRAIN_FILE = 'Train-28x28_cntk_text.txt'
TEST_FILE = 'Test-28x28_cntk_text.txt'
NUM_FEATURES = 784          # 1 x 28 x 28
NUM_CLASSES = 10
TEST_MINIBATCH_SIZE = 1024

# Schedules of the original, one entry per epoch, the last entry repeats.
LR_PER_SAMPLE = [0.001] * 10 + [0.0005] * 10 + [0.0001]
MM_TIME_CONSTANT = [0] * 5 + [1024]      # momentum per sample = exp(-1/1024) from epoch 6


class UserError(Exception):
    """Something the user can fix; main() prints it as one line "error: ..." and exits 2."""


class DataError(UserError):
    """Missing or malformed data file."""


def log(*args):
    """Print a progress line to stderr (stdout is merged into it) and flush it; rank 0 only."""
    if log.enabled:
        print(*args, file=sys.stderr)
        sys.stderr.flush()


log.enabled = True


def schedule_value(values, epoch):
    """Per-epoch schedule lookup (0-based epoch), repeating the last value."""
    return values[min(epoch, len(values) - 1)]


def momentum_per_sample(epoch):
    """CNTK's momentum_as_time_constant_schedule: exp(-1/T) per sample, 0 for T = 0."""
    t = schedule_value(MM_TIME_CONSTANT, epoch)
    return math.exp(-1.0 / t) if t else 0.0


# ------------------------------------------------------------------------------
# Reader for CNTK text format files (shared by both engines)
# ------------------------------------------------------------------------------

def _describe(token):
    text = token.decode('utf-8', 'replace')
    return repr(text if len(text) <= 20 else text[:17] + '...')


def parse_ctf_line(line):
    """Parse one CTF line (bytes) in plain Python: (features, label, None) when it is
    fine, (None, None, problem) when not; blank lines give (None, None, None).

    This is the definition of the accepted format (fields in any order, blanks are
    spaces and control characters); read_ctf() parses the usual
    "|labels ... |features ..." lines vectorised and only falls back to this."""
    fields = {}
    current = None
    for token in re.findall(b'[^\\x00-\\x20]+', line):
        if token.startswith(b'|'):
            name = token[1:].decode('utf-8', 'replace')
            if name not in ('labels', 'features'):
                return None, None, "unknown field '|{}' (expected |labels and |features)".format(name)
            if name in fields:
                return None, None, "field '|{}' appears twice".format(name)
            current = fields[name] = []
        elif current is None:
            return None, None, "value {} before the first field (expected '|labels')".format(_describe(token))
        else:
            current.append(token)
    if not fields:
        return None, None, None
    for name, what, count in (('labels', 'label values', NUM_CLASSES),
                              ('features', 'features', NUM_FEATURES)):
        if name not in fields:
            return None, None, "missing '|{}' field".format(name)
        if len(fields[name]) != count:
            return None, None, 'expected {} {}, found {}'.format(count, what, len(fields[name]))
    for token in fields['features']:
        if not token.isdigit():
            return None, None, 'non-numeric feature value {}'.format(_describe(token))
        if len(token) > 3 or int(token) > 255:
            return None, None, 'feature value {} out of range 0-255'.format(_describe(token))
    for token in fields['labels']:
        if token not in (b'0', b'1'):
            return None, None, 'bad label value {} (expected 0 or 1)'.format(_describe(token))
    if fields['labels'].count(b'1') != 1:
        return None, None, "bad labels '{}' (expected one-hot: exactly one 1)".format(
            b' '.join(fields['labels']).decode('ascii'))
    features = np.array([int(t) for t in fields['features']], np.uint8)
    return features, fields['labels'].index(b'1'), None


TOKENS_PER_LINE = 2 + NUM_CLASSES + NUM_FEATURES     # |labels 10 values |features 784 values


# Byte codes for the vectorised parser: digits 0-9, blank (space or control character) 10, other 11.
_BYTE_CODE = np.full(256, 11, np.uint8)
_BYTE_CODE[:33] = 10
_BYTE_CODE[48:58] = np.arange(10)


def _parse_ctf_chunk(data, pos, end):
    """Parse the whole lines in data[pos:end], vectorised for the usual line layout
    "|labels" + 10 values + "|features" + 784 values; other lines go to parse_ctf_line.

    Returns (features uint8 (n, 784), labels int64 (n,), None), or
    (None, None, (line index in the chunk, problem)) for the first bad line."""
    a = np.frombuffer(data, np.uint8, end - pos, pos)
    code = np.empty(a.size + 5, np.uint8)              # 4 blanks in front, 1 behind
    code[:4] = code[-1] = 10
    np.take(_BYTE_CODE, a, out=code[4:-1])
    blank = code == 10
    ends = np.flatnonzero(blank[4:] > blank[3:-1])      # token ends (exclusive), i.e. one past its last byte
    line_starts = np.concatenate(([0], np.flatnonzero(a[:-1] == 10) + 1))
    first_token = np.searchsorted(ends, line_starts)
    num_tokens = np.diff(np.append(first_token, ends.size))
    samples = np.flatnonzero(num_tokens)                 # non-blank lines
    full = np.flatnonzero(num_tokens == TOKENS_PER_LINE)
    if full.size * TOKENS_PER_LINE == ends.size:         # the usual case: all lines have 796 tokens
        e = ends.reshape(-1, TOKENS_PER_LINE)
    else:
        e = ends[first_token[full][:, None] + np.arange(TOKENS_PER_LINE)]

    def before_end(tokens, k):                           # code of the k-th byte before the token ends
        return code[4 - k:].take(tokens)

    def is_word(tokens, word):
        ok = (tokens >= len(word)) & (code[np.maximum(tokens + 3 - len(word), 0)] == 10)
        for k, c in enumerate(bytearray(word[::-1])):
            ok &= a[np.maximum(tokens - 1 - k, 0)] == c
        return ok

    ok = is_word(e[:, 0], b'|labels') & is_word(e[:, 1 + NUM_CLASSES], b'|features')
    label_tokens = e[:, 1:1 + NUM_CLASSES]
    label_digits = before_end(label_tokens, 1)
    ok &= ((label_digits < 2) & (before_end(label_tokens, 2) == 10)).all(axis=1)
    ok &= label_digits.sum(axis=1, dtype=np.int64) == 1
    # Features: 1 to 3 digits (c1 is the last one), value at most 255.
    feature_tokens = np.ascontiguousarray(e[:, 2 + NUM_CLASSES:])
    c1, c2, c3, c4 = (before_end(feature_tokens, k) for k in (1, 2, 3, 4))
    two = c2 < 10
    three = two & (c3 < 10)
    valid = (c1 < 10) & ((c2 == 10) | (two & ((c3 == 10) | (three & (c4 == 10)))))
    value = c1.astype(np.int16)
    value += two * c2.astype(np.int16) * 10
    value += three * c3.astype(np.int16) * 100
    valid &= value <= 255
    ok &= valid.all(axis=1)

    features = np.empty((samples.size, NUM_FEATURES), np.uint8)
    labels = np.empty(samples.size, np.int64)
    row = np.searchsorted(samples, full)[ok]             # sample index of each good line
    features[row] = value[ok]
    labels[row] = np.argmax(label_digits[ok], axis=1)
    other = np.ones(samples.size, bool)
    other[row] = False
    if other.any():                                      # unusual or bad lines: plain Python
        lines = data[pos:end].split(b'\n')
        for k in np.flatnonzero(other):
            f, label, problem = parse_ctf_line(lines[samples[k]])
            if problem is not None or f is None:
                return None, None, (int(samples[k]), problem or 'malformed line')
            features[k], labels[k] = f, label
    return features, labels, None


def read_ctf(path, chunk_bytes=1 << 20):
    """Read a CNTK text format MNIST file: (features uint8 (n, 784), labels int64 (n,)).

    Raises DataError naming the file and the 1-based number of the first bad line."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except (IOError, OSError) as e:
        if not os.path.exists(path):
            raise DataError('data file not found: {}'.format(path))
        raise DataError('cannot read {}: {}'.format(path, e))
    chunks, pos = [], 0                                  # whole lines, about chunk_bytes each
    while pos < len(data):
        end = data.find(b'\n', min(pos + chunk_bytes, len(data)) - 1)
        end = len(data) if end < 0 else end + 1
        chunks.append((pos, end))
        pos = end
    pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))     # numpy releases the GIL
    futures = [pool.submit(_parse_ctf_chunk, data, pos, end) for pos, end in chunks]
    try:
        results = [future.result() for future in futures]
    finally:                                             # on SIGTERM: do not wait for the queued chunks
        for future in futures:
            future.cancel()
        pool.shutdown()
    first_line = 0
    for (pos, end), (features, labels, error) in zip(chunks, results):
        if error is not None:
            raise DataError('{} line {}: {}'.format(path, first_line + error[0] + 1, error[1]))
        first_line += data.count(b'\n', pos, end)
    features = [r[0] for r in results]
    if not features or sum(len(f) for f in features) == 0:
        raise DataError('{}: no samples'.format(path))
    return np.concatenate(features), np.concatenate([r[1] for r in results])


# ------------------------------------------------------------------------------
# Output helpers (shared by both engines)
# ------------------------------------------------------------------------------

def save_atomically(path, write):
    """Call write(temporary path) in the same directory, then rename it to path, so
    that only complete files are ever visible (also on a network share)."""
    directory, name = os.path.split(path)
    temp = os.path.join(directory, '.{}.{}.tmp'.format(name, os.getpid()))
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:                                # also on SIGTERM: no temporary file left
        try:
            os.remove(temp)
        except OSError:
            pass
        raise


def log_schedule(lr, momentum, previous):
    """Print the learning rate / momentum when they change, as CNTK's learner does."""
    if previous is None or lr != previous[0]:
        log('Learning rate per 1 samples: {}'.format(lr))
    if previous is None or momentum != previous[1]:
        log('Momentum per 1 samples: {}'.format(momentum))
    return lr, momentum


def log_epoch(epoch, epochs, loss, error, samples, seconds):
    """The epoch summary line of CNTK's ProgressPrinter (loss, error: per-sample averages)."""
    log('Finished Epoch[{} of {}]: [Training] loss = {:0.6f} * {}, metric = {:0.2f}% * {} {:0.3f}s '
        '({:0.1f} samples/s);'.format(epoch + 1, epochs, loss, samples, 100.0 * error, samples,
                                      seconds, samples / max(seconds, 1e-9)))


def log_final_results(errors, samples, minibatches):
    # The original prints minibatch_index+1 after counting the minibatches: [1-11] for 10.
    log('')
    log('Final Results: Minibatch[1-{}]: errs = {:0.2f}% * {}'.format(
        minibatches + 1, 100.0 * errors / samples, samples))
    log('')


def write_metrics(model_dir, history):
    """ConvNet_MNIST_metrics.csv: one row per finished epoch (epoch 1-based as in the log,
    loss per sample, error as a fraction, learning rate per sample, training seconds)."""
    def write(path):
        with open(path, 'w') as f:
            f.write('epoch,loss,error,learning_rate,seconds\n')
            for epoch, loss, error, lr, seconds in history:
                f.write('{},{:.6f},{:.6f},{},{:.3f}\n'.format(epoch + 1, loss, error, lr, seconds))
    save_atomically(os.path.join(model_dir, 'ConvNet_MNIST_metrics.csv'), write)


def extra_output(name, write):
    """Write an output the original did not have (ONNX model, plot): a failure there,
    e.g. an old library in the CNTK container, is a warning, not a failed job."""
    try:
        write()
    except Exception as e:
        log('warning: could not write {}: {}: {}'.format(name, type(e).__name__, e))


def write_plot(model_dir, history, test_error, engine):
    """ConvNet_MNIST_training.png: training loss and error per epoch (matplotlib, Agg)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        log('matplotlib is not installed: skipping ConvNet_MNIST_training.png')
        return
    epochs = [h[0] + 1 for h in history]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    loss_ax, error_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    loss_ax.plot(epochs, [h[1] for h in history], 'o-')
    loss_ax.set(xlabel='epoch', ylabel='training loss per sample', title='Loss')
    error_ax.plot(epochs, [100.0 * h[2] for h in history], 'o-', label='training (dropout on)')
    error_ax.axhline(100.0 * test_error, color='r', linestyle='--',
                     label='test after last epoch: {:.2f}%'.format(100.0 * test_error))
    error_ax.set(xlabel='epoch', ylabel='error (%)', title='Classification error')
    error_ax.set_yscale('log')
    error_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, position: '{:g}'.format(value)))
    error_ax.yaxis.set_minor_formatter(FuncFormatter(      # label 2 and 5 times a power of 10
        lambda value, position: '{:g}'.format(value) if '{:.0e}'.format(value)[0] in '25' else ''))
    error_ax.legend()
    for ax in (loss_ax, error_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle('ConvNet_MNIST ({})'.format(engine))
    save_atomically(os.path.join(model_dir, 'ConvNet_MNIST_training.png'),
                    lambda path: fig.savefig(path, format='png', dpi=100))


def minibatches(order, size):
    """Split a sample order into minibatches; the last one is clipped."""
    return [order[i:i + size] for i in range(0, len(order), size)]


# ------------------------------------------------------------------------------
# CNTK (the original code, fed from the shared reader)
# ------------------------------------------------------------------------------

def _value(attribute):
    """CNTK Trainer statistics are properties (methods in the 2.0 betas)."""
    return attribute() if callable(attribute) else attribute


def train_cntk(train, test, args):
    import cntk
    from cntk.layers import default_options, Convolution2D, MaxPooling, Dense, Dropout
    from cntk.learners import (momentum_sgd, learning_rate_schedule, UnitType,
                               momentum_as_time_constant_schedule)
    from cntk.logging import ProgressPrinter, log_number_of_parameters

    if args.seed is not None and hasattr(cntk, 'cntk_py'):
        cntk.cntk_py.set_fixed_random_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)
    epoch_size = len(train[1])       # one sweep (the original: 60000 = full MNIST)

    # Input variables denoting the features and label data
    input_fn = getattr(cntk, 'input_variable', None) or cntk.ops.input
    input_var = input_fn((1, 28, 28), np.float32, name='features')     # named: the ONNX input name
    label_var = input_fn(NUM_CLASSES, np.float32)

    # Instantiate the feedforward classification model
    scaled_input = cntk.ops.element_times(cntk.ops.constant(0.00390625), input_var)
    with default_options(activation=cntk.ops.relu, pad=False):
        conv1 = Convolution2D((5, 5), 32, pad=True)(scaled_input)
        pool1 = MaxPooling((3, 3), (2, 2))(conv1)
        conv2 = Convolution2D((3, 3), 48)(pool1)
        pool2 = MaxPooling((3, 3), (2, 2))(conv2)
        conv3 = Convolution2D((3, 3), 64)(pool2)
        f4 = Dense(96)(conv3)
        drop4 = Dropout(0.5)(f4)
        z = Dense(NUM_CLASSES, activation=None)(drop4)

    ce = cntk.losses.cross_entropy_with_softmax(z, label_var)
    pe = cntk.metrics.classification_error(z, label_var)

    # Set learning parameters
    lr_schedule = learning_rate_schedule(LR_PER_SAMPLE, UnitType.sample, epoch_size)
    mm_schedule = momentum_as_time_constant_schedule(MM_TIME_CONSTANT, epoch_size)

    # Instantiate the trainer object to drive the model training; several MPI ranks: data-parallel
    learner = momentum_sgd(z.parameters, lr_schedule, mm_schedule)
    rank, workers = 0, 1
    if int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
        from cntk.train.distributed import Communicator, data_parallel_distributed_learner
        learner = data_parallel_distributed_learner(learner)    # sums the gradients of all ranks
        rank, workers = Communicator.rank(), Communicator.num_workers()
        log.enabled = rank == 0
    progress_printer = ProgressPrinter(tag='Training', num_epochs=args.epochs)
    trainer = cntk.Trainer(z, (ce, pe), learner, [progress_printer] if rank == 0 else [])

    if rank == 0:
        log_number_of_parameters(z)
    log('')

    def batch(data, index):
        x = data[0][index].astype(np.float32).reshape(-1, 1, 28, 28)
        return {input_var: x, label_var: one_hot[data[1][index]]}

    history = []
    for epoch in range(args.epochs):                    # loop over epochs
        start = time.time()
        loss_sum = error_sum = 0.0
        for index in minibatches(rng.permutation(epoch_size), args.minibatch_size):
            index = index[rank::workers]                                    # this rank's share
            trainer.train_minibatch(batch(train, index))                    # update model with it
            loss_sum += _value(trainer.previous_minibatch_loss_average) * len(index) * workers
            error_sum += _value(trainer.previous_minibatch_evaluation_average) * len(index) * workers
        trainer.summarize_training_progress()
        history.append((epoch, loss_sum / epoch_size, error_sum / epoch_size,
                        schedule_value(LR_PER_SAMPLE, epoch), time.time() - start))
        if rank == 0:
            save_atomically(os.path.join(args.model_dir, 'ConvNet_MNIST_{}.dnn'.format(epoch)), z.save)
            write_metrics(args.model_dir, history)
    if rank != 0:
        Communicator.finalize()
        return None

    # Test in file order, minibatches of 1024
    test_batches = minibatches(np.arange(len(test[1])), TEST_MINIBATCH_SIZE)
    errors = 0.0
    for index in test_batches:
        errors += trainer.test_minibatch(batch(test, index)) * len(index)
    log_final_results(errors, len(test[1]), len(test_batches))
    if workers > 1:
        Communicator.finalize()

    model_format = getattr(cntk, 'ModelFormat', None)
    if model_format is None:
        log('CNTK {} cannot export ONNX (needs 2.3 or later): skipping ConvNet_MNIST.onnx'.format(
            cntk.__version__))
    else:           # CNTK's exporter drops the batch axis: this model takes one image (1, 1, 28, 28) at a time
        extra_output('ConvNet_MNIST.onnx', lambda: save_atomically(
            os.path.join(args.model_dir, 'ConvNet_MNIST.onnx'), lambda path: z.save(path, format=model_format.ONNX)))
    extra_output('ConvNet_MNIST_training.png', lambda: write_plot(
        args.model_dir, history, errors / len(test[1]), 'CNTK ' + cntk.__version__))
    return errors / len(test[1])


# ------------------------------------------------------------------------------
# PyTorch (the same network, loss, schedules and CNTK's momentum SGD)
# ------------------------------------------------------------------------------

def build_torch_model():
    """The ConvNet of the original, taking raw pixels (N, 1, 28, 28) 0-255 like the
    CNTK model (it scales them by 1/256 itself). Glorot-uniform weights, zero biases.

    Max-pooling comes before the ReLU of conv1 and conv2: ReLU and max commute, so
    this is the same function (and gradient) as conv -> ReLU -> pool, with 4x fewer
    ReLU evaluations."""
    from collections import OrderedDict
    import torch
    from torch import nn

    class ConvNet(nn.Sequential):
        def forward(self, x):
            return super(ConvNet, self).forward(x * 0.00390625)

    model = ConvNet(OrderedDict([
        ('conv1', nn.Conv2d(1, 32, 5, padding=2)), ('pool1', nn.MaxPool2d(3, 2)), ('relu1', nn.ReLU()),
        ('conv2', nn.Conv2d(32, 48, 3)), ('pool2', nn.MaxPool2d(3, 2)), ('relu2', nn.ReLU()),
        ('conv3', nn.Conv2d(48, 64, 3)), ('relu3', nn.ReLU()),
        ('flatten', nn.Flatten()),
        ('f4', nn.Linear(64 * 3 * 3, 96)), ('relu4', nn.ReLU()),
        ('drop4', nn.Dropout(0.5)),
        ('z', nn.Linear(96, NUM_CLASSES)),
    ]))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
    return model


def unit_gain_momentum_step(params, buffers, lr_per_sample, momentum):
    """CNTK momentum_sgd (unit gain): c = m*c + (1-m)*g; w -= lr*c, with g the gradient
    of the summed minibatch loss and m the momentum for this minibatch."""
    import torch
    grads = [p.grad for p in params]
    with torch.no_grad():
        if hasattr(torch, '_foreach_add_'):             # one fused kernel per op on GPUs
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads, alpha=1.0 - momentum)
            torch._foreach_add_(params, buffers, alpha=-lr_per_sample)
        else:
            for p, g, c in zip(params, grads, buffers):
                c.mul_(momentum).add_(g, alpha=1.0 - momentum)
                p.add_(c, alpha=-lr_per_sample)


def torch_train_epoch(model, buffers, x, y, order, lr_per_sample, momentum_per_sample, minibatch_size,
                      rank=0, world_size=1):
    """One training epoch over x[order] (pixels), y[order] (class indices); returns the
    sums over the epoch of the per-sample losses and of the errors, as floats (this rank's).

    With world_size ranks (model wrapped in DDP), each rank takes every world_size-th sample
    of each global minibatch; DDP averages the gradients, so the loss is scaled by world_size
    to give the gradient of the global minibatch's summed loss, as on one process."""
    import torch
    import torch.nn.functional as F
    model.train()
    params = list(model.parameters())
    loss_sum = torch.zeros((), device=x.device)
    error_sum = torch.zeros((), dtype=torch.int64, device=x.device)
    for index in order.split(minibatch_size):
        momentum = momentum_per_sample ** len(index)           # of the global minibatch
        index = index[rank::world_size]
        xb, yb = x[index], y[index]
        output = model(xb)
        loss = F.cross_entropy(output, yb, reduction='sum')
        for p in params:
            p.grad = None
        (loss * world_size if world_size > 1 else loss).backward()
        unit_gain_momentum_step(params, buffers, lr_per_sample, momentum)
        loss_sum += loss.detach()
        error_sum += (output.detach().argmax(1) != yb).sum()
    return float(loss_sum), int(error_sum)


def torch_test_errors(model, x, y, minibatch_size=TEST_MINIBATCH_SIZE):
    """Errors on x, y in order (dropout off): (error count, number of minibatches)."""
    import torch
    model.eval()
    errors = 0
    with torch.no_grad():
        for xb, yb in zip(x.split(minibatch_size), y.split(minibatch_size)):
            errors += int((model(xb).argmax(1) != yb).sum())
    return errors, (len(y) + minibatch_size - 1) // minibatch_size


def torch_setup(seed=None, local_rank=0):
    """Device (CUDA when available: one GPU per rank of a node), seeds and a fast memory layout:
    (torch, device, layout)."""
    import torch
    device = (torch.device('cuda', local_rank % torch.cuda.device_count()) if torch.cuda.is_available()
              else torch.device('cpu'))
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    # channels-last convolutions are about twice as fast on CPUs (oneDNN)
    layout = torch.channels_last if device.type == 'cpu' else torch.contiguous_format
    return torch, device, layout


def torch_tensors(data, device, layout):
    """Shared-reader arrays as tensors on the device, built once: pixels as float (N, 1, 28, 28)."""
    import torch
    x = torch.from_numpy(data[0]).to(device).float().view(-1, 1, 28, 28)
    return x.contiguous(memory_format=layout), torch.from_numpy(data[1]).to(device)


CHECKPOINT_FORMAT = 'ConvNet_MNIST training state 2'
CHECKPOINT_NAME = re.compile(r'ConvNet_MNIST_(\d+)\.pt$')


def newest_checkpoint(model_dir):
    """(path, epoch) of the highest-numbered ConvNet_MNIST_<epoch>.pt in model_dir, or None."""
    epochs = [int(m.group(1)) for m in (CHECKPOINT_NAME.match(n) for n in os.listdir(model_dir)) if m]
    if not epochs:
        return None
    return os.path.join(model_dir, 'ConvNet_MNIST_{}.pt'.format(max(epochs))), max(epochs)


def training_state(model, buffers, rng, epoch, history):
    """The checkpoint: everything a resumed run needs to continue exactly (CPU tensors, plain
    values: loads with torch.load(weights_only=True)); the weights are under 'model'."""
    import torch
    name, keys, position, has_gauss, cached_gaussian = rng.get_state()
    return {'format': CHECKPOINT_FORMAT, 'epoch': epoch, 'model': state_dict_on_cpu(model),
            'momentum_buffers': [b.detach().cpu().clone() for b in buffers],
            'numpy_rng': [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
                          float(cached_gaussian)],
            'torch_rng': torch.get_rng_state(), 'history': [tuple(h) for h in history]}


def load_training_state(path):
    """The checkpoint at path, or a UserError saying why it cannot be resumed from."""
    import torch
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise UserError('cannot resume from {}: {}; pass --no-resume to start over'.format(path, e))
    if not isinstance(state, dict) or state.get('format') != CHECKPOINT_FORMAT:
        raise UserError('cannot resume from {}: it holds only weights (an older ConvNet_MNIST.py); '
                        'pass --no-resume to start over'.format(path))
    return state


def restore_training_state(state, model, buffers, rng):
    """Puts the checkpoint's weights, momentum buffers and random states back; returns its history."""
    import torch
    getattr(model, 'module', model).load_state_dict(state['model'])
    with torch.no_grad():
        for buffer, saved in zip(buffers, state['momentum_buffers']):
            buffer.copy_(saved)
    name, keys, position, has_gauss, cached_gaussian = state['numpy_rng']
    rng.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state['torch_rng'])
    return [tuple(h) for h in state['history']]


def state_dict_on_cpu(model):
    """The checkpoint: the model's state_dict with plain CPU tensors (loads anywhere)."""
    from collections import OrderedDict
    model = getattr(model, 'module', model)              # unwrapped from DDP
    return OrderedDict((k, v.detach().cpu().contiguous()) for k, v in model.state_dict().items())


def distributed_context(args):
    """(rank, world size, local rank, init method) when this process is one rank of several, else None:
    the recipe's --world-size/--rank/--dist-url, torch.distributed's RANK/WORLD_SIZE/MASTER_ADDR, or an
    MPI launch (rendezvous in Batch AI's shared job directory, else 'mpi': through MPI itself)."""
    env = os.environ
    if args.world_size and args.world_size > 1:
        rank = args.rank if args.rank is not None else int(env.get('RANK', env.get('AZ_BATCHAI_TASK_INDEX', 0)))
        return rank, args.world_size, int(env.get('LOCAL_RANK', 0)), args.dist_url or 'env://'
    if int(env.get('WORLD_SIZE', '1')) > 1:
        return int(env['RANK']), int(env['WORLD_SIZE']), int(env.get('LOCAL_RANK', 0)), 'env://'
    if int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
        shared = env.get('AZ_BATCHAI_SHARED_JOB_TEMP')
        return (int(env['OMPI_COMM_WORLD_RANK']), int(env['OMPI_COMM_WORLD_SIZE']),
                int(env.get('OMPI_COMM_WORLD_LOCAL_RANK', 0)),
                'file://' + os.path.join(shared, 'ConvNet_MNIST.rendezvous') if shared else 'mpi')
    return None


def mpi_rendezvous(world_size):
    """The process group's store, agreed through MPI (mpirun outside Batch AI): rank 0 listens on a port
    the kernel picks and tells the others where."""
    import socket
    import torch.distributed as dist
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise UserError('started by mpirun outside Batch AI: the ranks agree on a rendezvous through mpi4py, '
                        'which cannot be imported ({}); pip install mpi4py'.format(e))
    comm = MPI.COMM_WORLD
    if comm.Get_rank() == 0:
        store = dist.TCPStore('0.0.0.0', 0, world_size, is_master=True, wait_for_workers=False)
        comm.bcast((socket.getfqdn(), store.port), root=0)
        return store
    host, port = comm.bcast(None, root=0)
    return dist.TCPStore(host, port, world_size, is_master=False)


def torch_distribute(model, context, device, backend, seed):
    """Join the process group and wrap the model in DDP (rank 0's initial weights win);
    returns (model, seed shared by all ranks: the epochs' sample order must agree)."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    rank, world_size, _, init_method = context
    rendezvous = {'store': mpi_rendezvous(world_size)} if init_method == 'mpi' else {'init_method': init_method}
    dist.init_process_group(backend or ('nccl' if device.type == 'cuda' else 'gloo'), world_size=world_size,
                            rank=rank, **rendezvous)
    shared = torch.tensor([seed if seed is not None else random.SystemRandom().randrange(2 ** 31)],
                          dtype=torch.int64, device=device)
    dist.broadcast(shared, 0)
    model = DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None,
                                    gradient_as_bucket_view=True)
    torch.manual_seed(int(shared) + rank)                # each rank its own dropout masks
    torch_distribute.joined = True
    return model, int(shared)


torch_distribute.joined = False


def exit_process(code):
    """sys.exit(code), except for a rank that joined a process group: it leaves without the
    interpreter's shutdown. DDP keeps the gloo process group, and its threads, alive to the end, and a
    thread still releasing a finished collective then aborts the process ("terminate called without an
    active exception", SIGABRT; pytorch/pytorch#179291): a rank that trained well would fail its job."""
    if not torch_distribute.joined:
        sys.exit(code)
    mpi = sys.modules.get('mpi4py.MPI')                  # mpirun expects every rank it started to finalize
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def train_pytorch(train, test, args):
    context = distributed_context(args)
    torch, device, layout = torch_setup(args.seed, context[2] if context else 0)
    model = build_torch_model().to(device, memory_format=layout)
    rank, world_size, seed = 0, 1, args.seed
    if context:
        rank, world_size = context[0], context[1]
        log.enabled = rank == 0
        model, seed = torch_distribute(model, context, device, args.dist_backend, args.seed)
    rng = np.random.RandomState(seed)
    params = list(model.parameters())
    buffers = [torch.zeros_like(p) for p in params]    # CNTK's smoothed gradients, start at 0
    x_train, y_train = torch_tensors(train, device, layout)
    x_test, y_test = torch_tensors(test, device, layout)
    epoch_size = len(y_train)        # one sweep (the original: 60000 = full MNIST)
    log('PyTorch {} on {}{}'.format(torch.__version__, torch.cuda.get_device_name(device)
                                    if device.type == 'cuda' else 'CPU',
                                    ', {} ranks'.format(world_size) if world_size > 1 else ''))
    log('Training {} parameters in {} parameter tensors.'.format(sum(p.numel() for p in params), len(params)))
    log('')

    history, previous, first_epoch = [], None, 0
    checkpoint = newest_checkpoint(args.model_dir) if args.resume else None
    if checkpoint:
        history = restore_training_state(load_training_state(checkpoint[0]), model, buffers, rng)
        first_epoch = checkpoint[1] + 1
        log('Resumed from {} (epoch {} of {} done).'.format(checkpoint[0], first_epoch, args.epochs))
        if first_epoch > 0:
            previous = (schedule_value(LR_PER_SAMPLE, first_epoch - 1), momentum_per_sample(first_epoch - 1))
    for epoch in range(first_epoch, args.epochs):
        lr, momentum = schedule_value(LR_PER_SAMPLE, epoch), momentum_per_sample(epoch)
        previous = log_schedule(lr, momentum, previous)
        start = time.time()
        order = torch.from_numpy(rng.permutation(epoch_size)).to(device)
        loss_sum, errors = torch_train_epoch(model, buffers, x_train, y_train, order, lr, momentum,
                                             args.minibatch_size, rank, world_size)
        if world_size > 1:                               # the whole minibatch's figures, for the log
            totals = torch.tensor([loss_sum, errors], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(totals)
            loss_sum, errors = float(totals[0]), int(totals[1])
        seconds = time.time() - start
        log_epoch(epoch, args.epochs, loss_sum / epoch_size, errors / epoch_size, epoch_size, seconds)
        history.append((epoch, loss_sum / epoch_size, errors / epoch_size, lr, seconds))
        if rank == 0:
            save_atomically(os.path.join(args.model_dir, 'ConvNet_MNIST_{}.pt'.format(epoch)),   # CPU tensors
                            lambda path: torch.save(training_state(model, buffers, rng, epoch, history), path))
            write_metrics(args.model_dir, history)
    if world_size > 1:
        torch.distributed.destroy_process_group()
        model = model.module
        if rank != 0:
            return None

    errors, test_batches = torch_test_errors(model, x_test, y_test)
    log_final_results(errors, len(y_test), test_batches)

    def export_onnx(path):                               # input: raw pixels, like the CNTK model
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')              # the TorchScript exporter's deprecation notice
            torch.onnx.export(model.eval(), (x_test[:1],), path, input_names=['features'],
                              output_names=['z'], dynamic_axes={'features': {0: 'batch'}, 'z': {0: 'batch'}},
                              dynamo=False)
    extra_output('ConvNet_MNIST.onnx', lambda: save_atomically(
        os.path.join(args.model_dir, 'ConvNet_MNIST.onnx'), export_onnx))
    extra_output('ConvNet_MNIST_training.png', lambda: write_plot(
        args.model_dir, history, errors / len(y_test), 'PyTorch ' + torch.__version__))
    return errors / len(y_test)


# ------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------

def choose_engine(name):
    if name in ('auto', 'cntk'):
        try:
            import cntk  # noqa: F401
            return 'cntk'
        except Exception as e:                           # ImportError, or a broken CNTK install
            if name == 'cntk':
                raise UserError('--engine cntk: cannot import cntk ({})'.format(e))
    try:
        import torch  # noqa: F401
    except Exception as e:
        raise UserError('cannot import torch ({}); install PyTorch or CNTK'.format(e))
    return 'pytorch'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train the CNTK ConvNet_MNIST sample network.')
    parser.add_argument('data_dir', help='directory with {} and {}'.format(TRAIN_FILE, TEST_FILE))
    parser.add_argument('model_dir', help='directory for checkpoints, ONNX model, metrics and plot')
    parser.add_argument('--epochs', type=int, default=40, help='epochs (sweeps over the training data)')
    parser.add_argument('--minibatch-size', type=int, default=64)
    parser.add_argument('--engine', choices=('auto', 'cntk', 'pytorch'), default='auto',
                        help='auto: CNTK when it can be imported, else PyTorch')
    parser.add_argument('--seed', type=int, help='make runs repeatable')
    parser.add_argument('--no-resume', dest='resume', action='store_false',
                        help='start over even when MODEL_DIR holds checkpoints (default: continue after '
                             'the newest ConvNet_MNIST_<epoch>.pt; PyTorch engine only)')
    parser.add_argument('--world-size', type=int, help='data-parallel ranks (the PyTorch recipe passes 2)')
    parser.add_argument('--rank', type=int, help="this process's rank (the recipe: $AZ_BATCHAI_TASK_INDEX)")
    parser.add_argument('--dist-url', help='rendezvous (the recipe: $AZ_BATCHAI_PYTORCH_INIT_METHOD)')
    parser.add_argument('--dist-backend', help='gloo or nccl (the recipe: $AZ_BATCHAI_PYTORCH_BACKEND)')
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.minibatch_size < 1:
        parser.error('--epochs and --minibatch-size must be positive')
    return args


def main(argv=None):
    args = parse_args(argv)
    sys.stdout = sys.stderr                              # Merge stdout and stderr (as on Batch AI)
    try:
        train = read_ctf(os.path.join(args.data_dir, TRAIN_FILE))
        test = read_ctf(os.path.join(args.data_dir, TEST_FILE))
        engine = choose_engine(args.engine)
        try:
            os.makedirs(args.model_dir, exist_ok=True)
        except OSError as e:
            raise UserError('cannot create model directory {}: {}'.format(args.model_dir, e))
        (train_cntk if engine == 'cntk' else train_pytorch)(train, test, args)
    except UserError as e:
        log.enabled = True                               # every rank says why it stops
        log('error: {}'.format(e))
        return 2
    return 0


if __name__ == '__main__':
    exit_process(main())
