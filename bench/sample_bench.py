#!/usr/bin/env python3
"""Benchmark samples/ConvNet_MNIST.py: reader speed, training-loop overhead, accuracy.

1. Parse time of the full training file (Train-28x28_cntk_text.txt, 60000 lines, ~112 MB) with the
   script's reader (best of --repeats).
2. Training throughput (images/s) of the script's PyTorch loop (summed loss, CNTK unit-gain momentum,
   loss/error accounting) against a bare PyTorch loop (the same network and memory layout, plain
   torch.optim.SGD, mean loss, no metrics) over the same --minibatches minibatches of 64, after a
   warm-up, alternating the two --repeats times (best of each); goal: ratio >= 0.9. For reference also
   the bare loop with PyTorch's default (NCHW) layout, which the script does not use on CPUs.
3. --accuracy-epochs N: runs the script itself for N epochs on the full data (its own process) and prints
   the per-epoch times and the final test error (goals: 2 epochs <= 1.5%, 40 epochs <= 0.7%).

The CTF files are made once into --data-dir (default /tmp/mnist-ctf) from --mnist-dir with
batchai_quickstart.mnist.prepare_mnist, or a small converter here if that is not importable.

    python bench/sample_bench.py [--data-dir /tmp/mnist-ctf] [--minibatches 300] [--repeats 3]
                                 [--accuracy-epochs N] [--skip-parse] [--skip-throughput] [--smoke]

--smoke: the small MNIST subset in tests/data, 5 minibatches, one repeat and a 1-epoch accuracy run, in a
temporary --data-dir: it checks that the benchmark runs; its figures mean nothing.
"""
import argparse
import atexit
import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'samples', 'ConvNet_MNIST.py')
PARSE_GOAL_S = 2.0
RATIO_GOAL = 0.9
ACCURACY_GOALS = {2: 1.5, 40: 0.7}                      # epochs: test error % at most


def load_sample():
    spec = importlib.util.spec_from_file_location('ConvNet_MNIST', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_data(data_dir, mnist_dir):
    names = ('Train-28x28_cntk_text.txt', 'Test-28x28_cntk_text.txt')
    try:
        from batchai_quickstart.mnist import prepare_mnist
    except ImportError:
        prepare_mnist = None
    if prepare_mnist is not None:                       # converts only when needed
        prepare_mnist(data_dir, mnist_dir=mnist_dir, log=lambda *a: None)
        return
    if all(os.path.exists(os.path.join(data_dir, n)) for n in names):
        return
    os.makedirs(data_dir, exist_ok=True)
    for name, prefix in zip(names, ('train', 't10k')):
        def idx(kind):
            data = gzip.open(os.path.join(mnist_dir, '{}-{}.gz'.format(prefix, kind))).read()
            return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3])
        images, labels = idx('images-idx3-ubyte').reshape(-1, 784), idx('labels-idx1-ubyte')
        eye = [' '.join('1' if k == j else '0' for k in range(10)) for j in range(10)]
        temp = os.path.join(data_dir, name + '.tmp')
        with open(temp, 'w') as f:
            for image, label in zip(images, labels):
                f.write('|labels {} |features {}\n'.format(eye[label], ' '.join(map(str, image.tolist()))))
        os.replace(temp, os.path.join(data_dir, name))


def bench_parse(sample, data_dir, repeats):
    path = os.path.join(data_dir, 'Train-28x28_cntk_text.txt')
    size = os.path.getsize(path)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x, y = sample.read_ctf(path)
        times.append(time.perf_counter() - start)
    best = min(times)
    print('1. parse {} ({:.1f} MB, {} lines): best {:.3f} s of {} ({:.0f} MB/s, {:.0f} lines/s); goal <= {} s: {}'
          .format(os.path.basename(path), size / 1e6, len(y), best, ', '.join('{:.3f}'.format(t) for t in times),
                  size / 1e6 / best, len(y) / best, PARSE_GOAL_S, 'OK' if best <= PARSE_GOAL_S else 'MISSED'))
    return x, y


def bench_throughput(sample, train, minibatches, repeats, warmup=20):
    torch, device, layout = sample.torch_setup(seed=0)
    import torch.nn.functional as F
    mb = 64
    x, y = sample.torch_tensors(train, device, layout)
    n = (warmup + minibatches) * mb
    order = torch.randperm(len(y))[:n].to(device)
    warm, timed = order[:warmup * mb], order[warmup * mb:]

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def script_loop(model_layout):
        model = sample.build_torch_model().to(device, memory_format=model_layout)
        buffers = [torch.zeros_like(p) for p in model.parameters()]

        def run(index):
            sample.torch_train_epoch(model, buffers, x, y, index, 0.001, 0.999, mb)
        return run

    def bare_loop(model_layout):
        model = sample.build_torch_model().to(device, memory_format=model_layout)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.064, momentum=0.9)
        xs = x.contiguous() if model_layout is torch.contiguous_format else x

        def run(index):
            model.train()
            for idx in index.split(mb):
                loss = F.cross_entropy(model(xs[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return run

    loops = [('script loop (unit-gain momentum, sum loss, metrics)', script_loop(layout)),
             ('bare loop (same layout, torch.optim.SGD, mean loss)', bare_loop(layout))]
    if layout is not torch.contiguous_format:
        loops.append(('bare loop, default NCHW layout (reference only)', bare_loop(torch.contiguous_format)))
    rates = dict((name, []) for name, _ in loops)
    for name, run in loops:
        run(warm)
    for _ in range(repeats):
        for name, run in loops:
            sync()
            start = time.perf_counter()
            run(timed)
            sync()
            rates[name].append(len(timed) / (time.perf_counter() - start))
    print('2. training throughput on {} ({} threads), {} minibatches of {} after {} warm-up, best of {}:'.format(
        torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU', torch.get_num_threads(),
        minibatches, mb, warmup, repeats))
    for name, _ in loops:
        print('   {:<55} {:8.1f} images/s  (runs: {})'.format(
            name, max(rates[name]), ', '.join('{:.0f}'.format(r) for r in rates[name])))
    ratio = max(rates[loops[0][0]]) / max(rates[loops[1][0]])
    print('   ratio script / bare: {:.3f}x; goal >= {}: {}'.format(ratio, RATIO_GOAL,
                                                                  'OK' if ratio >= RATIO_GOAL else 'MISSED'))
    if len(loops) > 2:
        print('   ratio script / bare NCHW: {:.3f}x'.format(max(rates[loops[0][0]]) / max(rates[loops[2][0]])))
    epoch = 60000 / max(rates[loops[0][0]])
    print('   => about {:.1f} s per 60000-image epoch, {:.1f} min for 40 epochs'.format(epoch, epoch * 40 / 60))


def bench_accuracy(data_dir, epochs, seed):
    model_dir = tempfile.mkdtemp(prefix='convnet-mnist-')
    command = [sys.executable, SCRIPT, data_dir, model_dir, '--epochs', str(epochs), '--engine', 'pytorch',
               '--seed', str(seed)]
    print('3. accuracy: {}'.format(' '.join(command)))
    sys.stdout.flush()
    start = time.time()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, universal_newlines=True)
    final, seconds = None, []
    for line in process.stderr:
        line = line.rstrip('\n')
        print('   | ' + line)
        sys.stdout.flush()
        match = re.search(r'\* \d+ (\d+\.\d+)s \(', line)
        if line.startswith('Finished Epoch') and match:
            seconds.append(float(match.group(1)))
        match = re.match(r'Final Results: .*errs = (\d+\.\d+)%', line)
        if match:
            final = float(match.group(1))
    process.wait()
    total = time.time() - start
    if process.returncode != 0 or final is None:
        print('   FAILED: exit code {}'.format(process.returncode))
        return
    goal = ACCURACY_GOALS.get(epochs)
    print('   {} epochs: test error {:.2f}%{}; epoch time mean {:.1f} s (min {:.1f}, max {:.1f}); total {:.0f} s; '
          'files in {}'.format(epochs, final, '' if goal is None else ' (goal <= {}%: {})'.format(
              goal, 'OK' if final <= goal else 'MISSED'), sum(seconds) / len(seconds), min(seconds), max(seconds),
              total, model_dir))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-dir', default='/tmp/mnist-ctf', help='CTF files (made here if missing)')
    parser.add_argument('--mnist-dir', default=os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'mnist'),
                        help='the four MNIST IDX .gz files')
    parser.add_argument('--minibatches', type=int, default=300, help='timed minibatches per throughput run')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--accuracy-epochs', type=int, default=0, help='train the script for N epochs (0: skip)')
    parser.add_argument('--seed', type=int, default=1, help='seed of the accuracy run')
    parser.add_argument('--skip-parse', action='store_true')
    parser.add_argument('--skip-throughput', action='store_true')
    parser.add_argument('--smoke', action='store_true', help='the small subset, briefly: checks that it runs')
    args = parser.parse_args()
    if args.smoke:
        args.data_dir = tempfile.mkdtemp(prefix='sample-bench-smoke-')
        atexit.register(shutil.rmtree, args.data_dir, True)
        args.mnist_dir = os.path.join(ROOT, 'tests', 'data', 'mnist-small')
        args.minibatches, args.repeats, args.accuracy_epochs = 5, 1, 1

    start = time.perf_counter()
    prepare_data(args.data_dir, args.mnist_dir)
    print('CTF files in {} ({:.1f} s to prepare)'.format(args.data_dir, time.perf_counter() - start))
    sample = load_sample()
    train = None
    if not args.skip_parse:
        train = bench_parse(sample, args.data_dir, args.repeats)
    if not args.skip_throughput:
        if train is None:
            train = sample.read_ctf(os.path.join(args.data_dir, 'Train-28x28_cntk_text.txt'))
        bench_throughput(sample, train, args.minibatches, args.repeats)
    if args.accuracy_epochs:
        bench_accuracy(args.data_dir, args.accuracy_epochs, args.seed)


if __name__ == '__main__':
    main()
