# Copyright (c) Microsoft. All rights reserved.
# Licensed under the MIT license.
# ==============================================================================
"""ConvNet_MNIST: the Azure Batch AI CNTK quickstart training script.

    python ConvNet_MNIST.py DATA_DIR MODEL_DIR [--epochs 40] [--minibatch-size 64]
                            [--engine auto|cntk|pytorch] [--seed S]

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
from concurrent.futures import ThreadPoolExecutor

import numpy as np

TRAIN_FILE = 'Train-28x28_cntk_text.txt'
TEST_FILE = 'Test-28x28_cntk_text.txt'
NUM_FEATURES = 784          # 1 x 28 x 28
NUM_CLASSES = 10
TEST_MINIBATCH_SIZE = 1024

# Schedules of the original, one entry per epoch, the last entry repeats.
LR_PER_SAMPLE = [0.001] * 10 + [0.0005] * 10 + [0.0001]
MM_TIME_CONSTANT = [0] * 5 + [1024]      # momentum per sample = exp(-1/1024) from epoch 6


class DataError(Exception):
    """Missing or malformed data file; main() prints it as one line and exits 2."""


class Terminated(BaseException):
    """Raised by the SIGTERM handler (BaseException: no `except Exception` swallows it)."""


def log(*args):
    """Print a progress line to stderr (stdout is merged into it) and flush it."""
    print(*args, file=sys.stderr)
    sys.stderr.flush()


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
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:   # numpy releases the GIL
        results = list(pool.map(lambda chunk: _parse_ctf_chunk(data, chunk[0], chunk[1]), chunks))
    first_line = 0
    for (pos, end), (features, labels, error) in zip(chunks, results):
        if error is not None:
            raise DataError('{} line {}: {}'.format(path, first_line + error[0] + 1, error[1]))
        first_line += data.count(b'\n', pos, end)
    features = [r[0] for r in results]
    if not features or sum(len(f) for f in features) == 0:
        raise DataError('{}: no samples'.format(path))
    return np.concatenate(features), np.concatenate([r[1] for r in results])
