"""MNIST preparation: IDX validation, CTF bytes identical to CNTK's installer, and the cache/mirror download path.

Downloads go to a real HTTP server on 127.0.0.1 serving copies of the committed subset (tests/data/mnist-small),
with that subset's checksums passed in place of the published ones.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from batchai_quickstart import mnist
from batchai_quickstart.mnist import (MNIST_FILES, TEST_CTF_NAME, TEST_IMAGES, TEST_LABELS, TRAIN_CTF_NAME,
                                      TRAIN_IMAGES, TRAIN_LABELS, Checksum, MnistDataError, MnistUnavailableError)

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO_ROOT / "tests" / "data" / "mnist-small"
SHARED_MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SUBSET_COUNTS = {"train": 2000, "test": 500}

# The first training image, a 5: its sixth pixel row starts with 12 zeros then these strokes.
FIRST_IMAGE_ROW5 = "0 0 0 0 0 0 0 0 0 0 0 0 3 18 18 18 126 136 175 26 166 255 247 127 0 0 0 0"
FIRST_LINE_MD5 = "f736048ba63cdf2296782e9955993f98"  # whole first line, newline included
FIRST_LINE_LEN = 1882
# md5 of the full outputs (checked equal to the per-row reference converter when recorded).
FULL_TRAIN_CTF_MD5 = "696b841a5971d17c2e66a8a0ab43df66"
FULL_TEST_CTF_MD5 = "2afa8a7feaee46f96371efd6ff7ad649"


def quiet(_message: str) -> None:
    """A log function that drops messages."""


class Recorder:
    """A log function that keeps messages."""

    def __init__(self):
        self.lines = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)

    def text(self) -> str:
        return "\n".join(self.lines)


def subset_checksums() -> dict:
    """The subset files' checksums, standing in for the published table."""
    return {name: Checksum.of_file(SUBSET_DIR / name) for name in MNIST_FILES}


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# Converter: fast vs reference


def synthetic_split(count: int = 37, seed: int = 0):
    """Images exercising every pixel value and every token length, including in the last (newline) column."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 784), dtype=np.uint8)
    images[0, :6] = [0, 9, 10, 99, 100, 255]
    images[1] = np.arange(784) % 256
    images[2:8, -1] = [0, 9, 10, 99, 100, 255]
    images[8] = 0
    images[9] = 255
    labels = np.arange(count, dtype=np.uint8) % 10
    return images, labels


def test_fast_matches_reference_on_synthetic_data(tmp_path):
    images, labels = synthetic_split()
    mnist.reference_savetxt(tmp_path / "ref.txt", images, labels)
    mnist.write_ctf(tmp_path / "fast.txt", images, labels, block_rows=5)  # several blocks and a short last one
    expected = (tmp_path / "ref.txt").read_bytes()
    assert (tmp_path / "fast.txt").read_bytes() == expected
    assert mnist.encode_ctf_block(images, labels) == expected
    assert expected.startswith(b"|labels 1 0 0 0 0 0 0 0 0 0 |features 0 9 10 99 100 255 ")
    assert expected.count(b"\n") == len(images)


@pytest.mark.parametrize("split", ["train", "test"])
def test_fast_matches_reference_on_subset(tmp_path, split):
    images_name, labels_name = (TRAIN_IMAGES, TRAIN_LABELS) if split == "train" else (TEST_IMAGES, TEST_LABELS)
    images, labels = mnist.load_split(SUBSET_DIR / images_name, SUBSET_DIR / labels_name)
    assert len(images) == SUBSET_COUNTS[split]
    mnist.reference_savetxt(tmp_path / "ref.txt", images, labels)
    mnist.write_ctf(tmp_path / "fast.txt", images, labels, block_rows=300)
    assert (tmp_path / "fast.txt").read_bytes() == (tmp_path / "ref.txt").read_bytes()


def test_first_line_of_known_image(tmp_path):
    train, test = mnist.prepare_mnist(tmp_path / "out", mnist_dir=SUBSET_DIR, log=quiet)
    first_line = train.read_bytes().split(b"\n", 1)[0].decode("ascii") + "\n"
    prefix = "|labels 0 0 0 0 0 1 0 0 0 0 |features "
    assert first_line.startswith(prefix + "0 " * (5 * 28) + FIRST_IMAGE_ROW5 + " ")
    assert first_line.endswith(" 0 0\n") and "  " not in first_line
    assert len(first_line.split()) == 2 + 10 + 784
    assert len(first_line) == FIRST_LINE_LEN
    assert hashlib.md5(first_line.encode()).hexdigest() == FIRST_LINE_MD5
    assert train.read_bytes().count(b"\n") == SUBSET_COUNTS["train"]
    assert test.read_bytes().count(b"\n") == SUBSET_COUNTS["test"]


def test_plain_and_misnamed_files_give_the_same_output(tmp_path):
    """Files may be gunzipped, and gzip is detected by content, not by name."""
    plain_dir, misnamed_dir = tmp_path / "plain", tmp_path / "misnamed"
    plain_dir.mkdir()
    misnamed_dir.mkdir()
    for name in MNIST_FILES:
        (plain_dir / name[:-3]).write_bytes(gzip.decompress((SUBSET_DIR / name).read_bytes()))
        shutil.copy(SUBSET_DIR / name, misnamed_dir / name[:-3])  # gzipped bytes under the plain name
    expected = mnist.prepare_mnist(tmp_path / "a", mnist_dir=SUBSET_DIR, log=quiet)
    for source in (plain_dir, misnamed_dir):
        got = mnist.prepare_mnist(tmp_path / source.name / "out", mnist_dir=source, log=quiet)
        assert [p.read_bytes() for p in got] == [p.read_bytes() for p in expected]


def test_existing_outputs_from_the_same_source_are_kept(tmp_path):
    out = tmp_path / "out"
    mnist.prepare_mnist(out, mnist_dir=SUBSET_DIR, log=quiet)
    ctf_files = [out / TRAIN_CTF_NAME, out / TEST_CTF_NAME]
    assert sorted(p.name for p in out.iterdir()) == sorted([TRAIN_CTF_NAME, TEST_CTF_NAME, mnist.SOURCE_STAMP_NAME])
    umask = os.umask(0)
    os.umask(umask)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in ctf_files)  # not mkstemp's 0600
    stamps = [p.stat().st_mtime_ns for p in ctf_files]
    log = Recorder()
    # Same source, empty cache, no mirrors: would fail if it tried to fetch anything.
    mnist.prepare_mnist(out, mnist_dir=SUBSET_DIR, cache_dir=tmp_path / "empty-cache", mirrors=[], log=log)
    assert "skipping" in log.text()
    assert [p.stat().st_mtime_ns for p in ctf_files] == stamps


def test_another_source_converts_again(tmp_path):
    out = tmp_path / "out"
    mnist.prepare_mnist(out, mnist_dir=SUBSET_DIR, log=quiet)
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for name, content in ((TRAIN_IMAGES, idx_images(3)), (TRAIN_LABELS, idx_labels(3)),
                          (TEST_IMAGES, idx_images(2)), (TEST_LABELS, idx_labels(2))):
        (synthetic / name[:-3]).write_bytes(content)
    train, test = mnist.prepare_mnist(out, mnist_dir=synthetic, log=quiet)
    assert (len(train.read_bytes().splitlines()), len(test.read_bytes().splitlines())) == (3, 2)
    # Without mnist_dir the published files are wanted: a subset conversion is not reused.
    with pytest.raises(mnist.MnistUnavailableError):
        mnist.prepare_mnist(out, cache_dir=tmp_path / "empty-cache", mirrors=[], log=quiet)


# ---------------------------------------------------------------------------------------------------------------------
# Malformed IDX files


def idx_images(count=3, rows=28, cols=28, magic=mnist.IMAGE_MAGIC, pixels=None) -> bytes:
    if pixels is None:
        pixels = count * rows * cols
    return struct.pack(">IIII", magic, count, rows, cols) + bytes(pixels)


def idx_labels(count=3, magic=mnist.LABEL_MAGIC, values=None) -> bytes:
    values = [i % 10 for i in range(count)] if values is None else values
    return struct.pack(">II", magic, count) + bytes(values)


@pytest.mark.parametrize("reader, content, expected", [
    ("images", idx_images(magic=mnist.LABEL_MAGIC), "bad magic number 0x00000801, expected 0x00000803"),
    ("labels", idx_images(), "bad magic number 0x00000803, expected 0x00000801"),
    ("images", idx_images(count=60000, pixels=1234567),
     "truncated: header says 60000 images of 28x28 but file holds 1234567 bytes of pixels"),
    ("images", idx_images(count=2, pixels=3 * 784), "trailing data: header says 2 images of 28x28"),
    ("images", idx_images(rows=32, cols=32), "bad dimensions: header says 32x32 images, expected 28x28"),
    ("images", idx_images(rows=28, cols=27), "bad dimensions: header says 28x27 images"),
    ("images", b"\x00\x00\x08\x03\x00", "too short for an IDX images header"),
    ("labels", idx_labels(count=5, values=[1, 2, 3]), "truncated: header says 5 labels but file holds 3 bytes"),
    ("labels", idx_labels(count=3, values=[1, 12, 3]), "bad label 12 at index 1, expected 0..9"),
    ("labels", idx_labels(count=0, values=[]), "header says 0 labels"),
])
@pytest.mark.parametrize("gzipped", [False, True])
def test_malformed_idx_raises_one_line_error_naming_the_file(tmp_path, reader, content, expected, gzipped):
    path = tmp_path / ("broken-idx-ubyte.gz" if gzipped else "broken-idx-ubyte")
    path.write_bytes(gzip.compress(content, mtime=0) if gzipped else content)
    read = mnist.read_idx_images if reader == "images" else mnist.read_idx_labels
    with pytest.raises(MnistDataError) as caught:
        read(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_corrupt_gzip_is_a_data_error(tmp_path):
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(gzip.compress(idx_images(), mtime=0)[:-20])  # cut inside the deflate stream
    with pytest.raises(MnistDataError, match=f"^{path}: corrupt gzip data"):
        mnist.read_idx_images(path)


def test_image_and_label_count_mismatch(tmp_path):
    (tmp_path / "img").write_bytes(idx_images(count=4))
    (tmp_path / "lbl").write_bytes(idx_labels(count=3))
    with pytest.raises(MnistDataError) as caught:
        mnist.load_split(tmp_path / "img", tmp_path / "lbl")
    assert str(caught.value) == f"{tmp_path / 'lbl'}: holds 3 labels but img holds 4 images"


def test_malformed_local_file_stops_prepare(tmp_path):
    local = tmp_path / "mnist"
    shutil.copytree(SUBSET_DIR, local)
    (local / TEST_LABELS).write_bytes(gzip.compress(idx_labels(count=499), mtime=0))
    with pytest.raises(MnistDataError, match="holds 499 labels but t10k-images-idx3-ubyte.gz holds 500 images"):
        mnist.prepare_mnist(tmp_path / "out", mnist_dir=local, log=quiet)
    assert not (tmp_path / "out" / TEST_CTF_NAME).exists()


# ---------------------------------------------------------------------------------------------------------------------
# Downloads from a local HTTP server


class MirrorHandler(BaseHTTPRequestHandler):
    """Serves ``/<mode>/<file>`` from the server's folder; mode picks good, truncated, corrupt or missing."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.server.paths_requested.append(self.path)
        mode, _, name = self.path.lstrip("/").partition("/")
        path = self.server.root / name
        if mode not in ("good", "truncated", "corrupt") or "/" in name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]  # same length, one byte flipped
        announced = len(body) + (1000 if mode == "truncated" else 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if mode == "truncated" else body)
        self.close_connection = True  # for "truncated": the client sees the stream end early

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror_server(tmp_path_factory):
    """A local mirror serving copies of the subset; yields (base URL, server) and stops it afterwards."""
    root = tmp_path_factory.mktemp("mirror")
    for name in MNIST_FILES:
        shutil.copy(SUBSET_DIR / name, root / name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.root = root
    server.paths_requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def fetch(tmp_path, mirrors, log=quiet, cache=None):
    """Run the download path (no mnist_dir) with the subset's checksums and fast retries."""
    return mnist.prepare_mnist(tmp_path / "out", cache_dir=cache or tmp_path / "cache", mirrors=mirrors, log=log,
                               checksums=subset_checksums(), retries=2, backoff_s=0.01, timeout_s=10)


def assert_cache_holds_verified_subset(cache: Path) -> None:
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES)  # no .part leftovers
    for name in MNIST_FILES:
        assert md5_of(cache / name) == md5_of(SUBSET_DIR / name)


def test_truncated_response_is_rejected_and_next_mirror_used(tmp_path, mirror_server):
    base, server = mirror_server
    log = Recorder()
    train, _ = fetch(tmp_path, [f"{base}/truncated/", f"{base}/good/"], log=log)
    truncated_url = f"{base}/truncated/{TRAIN_IMAGES}"
    assert any(line.startswith(f"{truncated_url}: truncated") for line in log.lines), log.text()
    assert server.paths_requested.count(f"/truncated/{TRAIN_IMAGES}") >= 2  # retried before moving on
    assert_cache_holds_verified_subset(tmp_path / "cache")
    assert train.read_bytes().count(b"\n") == SUBSET_COUNTS["train"]


def test_corrupt_download_is_rejected_and_never_cached(tmp_path, mirror_server):
    base, server = mirror_server
    log = Recorder()
    with pytest.raises(MnistUnavailableError) as caught:
        fetch(tmp_path, [f"{base}/corrupt"], log=log)
    message = str(caught.value)
    assert "\n" not in message and f"{base}/corrupt/{TRAIN_IMAGES}: md5 mismatch" in message
    assert "--mnist-dir" in message
    assert f"{base}/corrupt/{TRAIN_IMAGES}: checksum check failed" in log.text()
    assert server.paths_requested.count(f"/corrupt/{TRAIN_IMAGES}") == 1  # a checksum failure is not retried
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "out").exists()

    fetch(tmp_path, [f"{base}/corrupt", f"{base}/good"])
    assert_cache_holds_verified_subset(tmp_path / "cache")


def test_download_is_cached_and_reused_without_network(tmp_path, mirror_server):
    base, server = mirror_server
    first = fetch(tmp_path, [f"{base}/good/"])
    requests_after_first = len(server.paths_requested)
    assert_cache_holds_verified_subset(tmp_path / "cache")

    log = Recorder()
    second = mnist.prepare_mnist(tmp_path / "out2", cache_dir=tmp_path / "cache", mirrors=[f"{base}/good/"],
                                 log=log, checksums=subset_checksums())
    assert len(server.paths_requested) == requests_after_first
    assert log.text().count("Using cached") == 4
    assert [p.read_bytes() for p in second] == [p.read_bytes() for p in first]


def test_bad_cache_file_is_replaced(tmp_path, mirror_server):
    base, server = mirror_server
    cache = tmp_path / "cache"
    fetch(tmp_path, [f"{base}/good"])
    (cache / TEST_LABELS).write_bytes(b"garbage")
    before = len(server.paths_requested)
    log = Recorder()
    mnist.obtain_mnist_files(cache_dir=cache, mirrors=[f"{base}/good"], log=log, checksums=subset_checksums())
    assert "fails verification" in log.text()
    assert server.paths_requested[before:] == [f"/good/{TEST_LABELS}"]
    assert_cache_holds_verified_subset(cache)


def test_unreachable_mirror_is_reported(tmp_path):
    with pytest.raises(MnistUnavailableError, match=r"http://127\.0\.0\.1:9/.*request failed"):
        fetch(tmp_path, ["http://127.0.0.1:9/"])  # port 9 (discard): connection refused


def test_incomplete_local_dir_falls_back_to_mirror(tmp_path, mirror_server):
    base, _ = mirror_server
    local = tmp_path / "partial"
    local.mkdir()
    shutil.copy(SUBSET_DIR / TRAIN_IMAGES, local / TRAIN_IMAGES)
    log = Recorder()
    mnist.prepare_mnist(tmp_path / "out", mnist_dir=local, cache_dir=tmp_path / "cache", mirrors=[f"{base}/good"],
                        log=log, checksums=subset_checksums())
    assert f"MNIST dir {local} lacks train-labels-idx1-ubyte[.gz]" in log.text()
    assert_cache_holds_verified_subset(tmp_path / "cache")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "prepare_mnist.py"), *args],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_cli_exits_2_with_one_line_error_when_nothing_is_available(tmp_path, mirror_server):
    base, _ = mirror_server
    result = run_cli("--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                     "--mnist-dir", str(tmp_path / "nowhere"), "--mirror", f"{base}/missing/",
                     "--mirror", f"{base}/also-missing/")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: could not obtain ")
    assert "HTTP 404" in result.stderr and "Traceback" not in result.stderr
    assert f"{tmp_path / 'nowhere'}: does not exist" in result.stderr


def test_cli_converts_a_local_dir(tmp_path):
    result = run_cli("--out", str(tmp_path / "out"), "--mnist-dir", str(SUBSET_DIR))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / TRAIN_CTF_NAME).read_bytes().count(b"\n") == SUBSET_COUNTS["train"]


def test_mirror_and_cache_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_MIRROR", " http://a/mnist/ ,http://b/,")
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path))
    assert mnist.resolve_mirrors() == ["http://a/mnist/", "http://b/"]
    assert mnist.resolve_mirrors(["http://c/"]) == ["http://c/"]
    assert mnist.resolve_cache_dir() == tmp_path
    monkeypatch.delenv("MNIST_MIRROR")
    monkeypatch.delenv("MNIST_CACHE_DIR")
    assert mnist.resolve_mirrors() == list(mnist.DEFAULT_MIRRORS)
    assert mnist.resolve_cache_dir() == Path.home() / ".cache" / "batchai-quickstart" / "mnist"
    assert mnist.mirror_url("http://a/mnist", TRAIN_IMAGES) == mnist.mirror_url("http://a/mnist/", TRAIN_IMAGES)


# ---------------------------------------------------------------------------------------------------------------------
# The full shared data set


@pytest.mark.skipif(not SHARED_MNIST_DIR.is_dir(), reason=f"{SHARED_MNIST_DIR} absent")
def test_shared_full_files_pass_published_checksums_as_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in MNIST_FILES:
        shutil.copy(SHARED_MNIST_DIR / name, cache / name)
    log = Recorder()
    train, test = mnist.prepare_mnist(tmp_path / "out", cache_dir=cache, mirrors=[], log=log)
    assert log.text().count("Using cached") == 4
    # About a second for the whole set with the fast converter; the md5s pin the installer's exact bytes.
    assert md5_of(train) == FULL_TRAIN_CTF_MD5
    assert md5_of(test) == FULL_TEST_CTF_MD5
