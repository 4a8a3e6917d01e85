"""MNIST in CNTK text format (CTF), as CNTK's ``install_mnist.py`` writes it.

The ConvNet_MNIST sample reads ``Train-28x28_cntk_text.txt`` and ``Test-28x28_cntk_text.txt``: one line per image,
in IDX order, ``|labels 0 0 0 0 0 1 0 0 0 0 |features 0 0 ... 255 ...`` (a one-hot label row, then the 784 raw
pixels 0-255).  This module reproduces those files byte for byte:

* :func:`read_idx_images` / :func:`read_idx_labels` read and validate the original IDX files (gzipped or plain);
* :func:`reference_savetxt` is the installer's straightforward per-row loop, kept for tests and benchmarks;
* :func:`encode_ctf_block` / :func:`write_ctf` are the fast vectorised converter (same bytes, >10x faster);
* :func:`obtain_mnist_files` finds the four source files: a local folder, a checksum-verified cache, or mirrors;
* :func:`prepare_mnist` ties it together and is what the CLI (``scripts/prepare_mnist.py``) calls.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import secrets
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
Log = Callable[[str], None]

TRAIN_CTF_NAME = "Train-28x28_cntk_text.txt"
TEST_CTF_NAME = "Test-28x28_cntk_text.txt"

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
#: The full set of files a mirror serves, by their published (gzipped) names.
MNIST_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
SOURCE_STAMP_NAME = ".mnist-source"  # which source files the CTF files in a folder were made from

IMAGE_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension
IMAGE_SIDE = 28
NUM_CLASSES = 10

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MIRROR_ENV = "MNIST_MIRROR"  # comma-separated base URLs
CACHE_ENV = "MNIST_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/batchai-quickstart/mnist")

_GZIP_MAGIC = b"\x1f\x8b"
_DOWNLOAD_CHUNK = 1 << 16
_CTF_BLOCK_ROWS = 4096  # ~13 MB of scratch per block: large enough to amortise numpy calls, small enough for RAM


# --------------------------------------------------------------------------------------------------------------------
# Errors


class MnistError(Exception):
    """Base class of every error this module raises on purpose; the message is a single line."""


class MnistDataError(MnistError, ValueError):
    """An IDX file is malformed; the message names the file and what is wrong."""


class MnistUnavailableError(MnistError, RuntimeError):
    """No source could supply a file; the message lists what was tried and how to fix it."""


# --------------------------------------------------------------------------------------------------------------------
# Checksums


@dataclass(frozen=True)
class Checksum:
    """Expected (or measured) identity of a file; ``sha256`` and ``size`` are checked only when given."""

    md5: str
    sha256: Optional[str] = None
    size: Optional[int] = None

    @classmethod
    def of_file(cls, path: PathLike) -> "Checksum":
        """Measure md5, sha256 and size of a file."""
        md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                md5.update(chunk)
                sha256.update(chunk)
                size += len(chunk)
        return cls(md5.hexdigest(), sha256.hexdigest(), size)

    def mismatch(self, actual: "Checksum") -> Optional[str]:
        """Describe how ``actual`` differs from this expectation, or return None when it matches."""
        if self.size is not None and actual.size is not None and actual.size != self.size:
            return f"size mismatch: {actual.size} bytes, expected {self.size}"
        if actual.md5 != self.md5.lower():
            return f"md5 mismatch: {actual.md5}, expected {self.md5.lower()}"
        if self.sha256 is not None and actual.sha256 is not None and actual.sha256 != self.sha256.lower():
            return f"sha256 mismatch: {actual.sha256}, expected {self.sha256.lower()}"
        return None


#: The md5s published for the original files (see the MNIST README); sha256 and size measured from the same bytes.
PUBLISHED_CHECKSUMS: Mapping[str, Checksum] = {
    TRAIN_IMAGES: Checksum("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                           "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    TRAIN_LABELS: Checksum("d53e105ee54ea40749a09fcbcd1e9432",
                           "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    TEST_IMAGES: Checksum("9fb629c4189551a2d022fa330f9573f3",
                          "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    TEST_LABELS: Checksum("ec29112dd5afa0611ce80d1b7f02629c",
                          "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}


# --------------------------------------------------------------------------------------------------------------------
# IDX reading and validation


def _read_maybe_gzipped(path: Path) -> bytes:
    """Return the file's contents, gunzipped when it starts with the gzip magic (whatever its name says)."""
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise MnistDataError(f"{path}: corrupt gzip data: {exc}") from None


def _check_magic(path: Path, data: bytes, expected: int, header_len: int, kind: str) -> None:
    """Check that the header is complete and starts with the expected IDX magic number."""
    if len(data) < header_len:
        raise MnistDataError(f"{path}: too short for an IDX {kind} header: {len(data)} bytes, need {header_len}")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected:
        hint = {IMAGE_MAGIC: " (it looks like an IDX image file)", LABEL_MAGIC: " (it looks like an IDX label file)"}
        raise MnistDataError(f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected:08x} for IDX {kind}"
                             f"{hint.get(magic, '')}")


def _check_payload(path: Path, what: str, count: int, item_size: int, payload: int, unit: str) -> None:
    """Check that the data after the header holds exactly ``count`` items of ``item_size`` bytes."""
    if count == 0:
        raise MnistDataError(f"{path}: header says 0 {what}; nothing to convert")
    expected = count * item_size
    if payload != expected:
        problem = "truncated" if payload < expected else "trailing data"
        raise MnistDataError(f"{path}: {problem}: header says {count} {what} but file holds {payload} bytes of "
                             f"{unit} (expected {expected})")


def read_idx_images(path: PathLike) -> np.ndarray:
    """Read an IDX image file (gzipped or plain) as a read-only ``(count, 784)`` uint8 array of 28x28 images."""
    path = Path(path)
    data = _read_maybe_gzipped(path)
    _check_magic(path, data, IMAGE_MAGIC, 16, "images")
    count, rows, cols = struct.unpack(">III", data[4:16])
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise MnistDataError(f"{path}: bad dimensions: header says {rows}x{cols} images, expected "
                             f"{IMAGE_SIDE}x{IMAGE_SIDE}")
    _check_payload(path, f"images of {rows}x{cols}", count, rows * cols, len(data) - 16, "pixels")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows * cols)


def read_idx_labels(path: PathLike) -> np.ndarray:
    """Read an IDX label file (gzipped or plain) as a read-only ``(count,)`` uint8 array of digits 0..9."""
    path = Path(path)
    data = _read_maybe_gzipped(path)
    _check_magic(path, data, LABEL_MAGIC, 8, "labels")
    (count,) = struct.unpack(">I", data[4:8])
    _check_payload(path, "labels", count, 1, len(data) - 8, "labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise MnistDataError(f"{path}: bad label {labels[bad[0]]} at index {bad[0]}, expected 0..{NUM_CLASSES - 1}"
                             f" ({bad.size} bad labels in all)")
    return labels


def load_split(images_path: PathLike, labels_path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Read one split (train or test): images ``(n, 784)`` and labels ``(n,)``, checked to have the same count."""
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise MnistDataError(f"{labels_path}: holds {len(labels)} labels but {Path(images_path).name} holds "
                             f"{len(images)} images")
    return images, labels


# --------------------------------------------------------------------------------------------------------------------
# CTF writing: the installer's reference loop, and the fast vectorised converter


def _as_pixel_rows(images: np.ndarray) -> np.ndarray:
    """Return images as a C-contiguous ``(n, pixels)`` uint8 array, refusing values outside 0..255."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError("pixel values must lie in 0..255")
        images = images.astype(np.uint8)
    return np.ascontiguousarray(images.reshape(len(images), -1))


def _as_label_vector(labels: np.ndarray, count: int) -> np.ndarray:
    """Return labels as a ``(count,)`` intp array, refusing values outside 0..9."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}")
    return labels.astype(np.intp)


def reference_savetxt(path: PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write CTF with the installer's per-row loop (CNTK ``mnist_utils.savetxt``): slow, obviously right.

    Kept as the yardstick that the fast converter must match byte for byte.  ``newline="\\n"`` pins the Linux
    line ending the installer produces on the Batch AI nodes, whatever platform this runs on.
    """
    images = _as_pixel_rows(images)
    labels = _as_label_vector(labels, len(images))
    one_hot_rows = [" ".join(row) for row in np.eye(NUM_CLASSES, dtype=np.uint).astype(str)]
    with open(path, "w", newline="\n") as f:
        for pixels, label in zip(images, labels):
            feature_str = " ".join(pixels.astype(str))
            f.write("|labels {} |features {}\n".format(one_hot_rows[label], feature_str))


def _token_table(terminator: bytes) -> np.ndarray:
    """Return 256 four-byte slots, slot v holding ``str(v) + terminator`` left-aligned and NUL-padded.

    Viewed as native uint32 so one gather copies a whole token; the NUL padding is deleted afterwards.
    """
    slots = np.zeros((256, 4), dtype=np.uint8)
    for value in range(256):
        token = str(value).encode("ascii") + terminator
        slots[value, :len(token)] = np.frombuffer(token, dtype=np.uint8)
    return slots.view("=u4").reshape(256)


def _label_prefix_table() -> np.ndarray:
    """Return a ``(10, 38)`` uint8 table: row k is ``|labels <one-hot k> |features `` (same length for every k)."""
    prefixes = [f"|labels {' '.join(str(int(v)) for v in row)} |features ".encode("ascii")
                for row in np.eye(NUM_CLASSES, dtype=int)]
    return np.array([np.frombuffer(p, dtype=np.uint8) for p in prefixes])


_SPACE_TOKENS = _token_table(b" ")
_NEWLINE_TOKENS = _token_table(b"\n")  # for the last pixel of each line
_LABEL_PREFIXES = _label_prefix_table()


def encode_ctf_block(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Encode images ``(n, pixels)`` uint8 and labels ``(n,)`` as CTF lines, identical to :func:`reference_savetxt`.

    Each line is laid out in fixed-width slots (label prefix, then four bytes per pixel) by table lookups, and the
    NUL padding is then squeezed out with ``bytes.translate``, which runs at C speed over the whole block.
    """
    images = _as_pixel_rows(images)
    labels = _as_label_vector(labels, len(images))
    count, pixels = images.shape
    prefix_len = _LABEL_PREFIXES.shape[1]
    lines = np.empty((count, prefix_len + 4 * pixels), dtype=np.uint8)
    lines[:, :prefix_len] = _LABEL_PREFIXES[labels]
    if pixels:
        slots = lines[:, prefix_len:].view("=u4")  # (count, pixels), one token per uint32 slot
        slots[:] = _SPACE_TOKENS[images]
        slots[:, -1] = _NEWLINE_TOKENS[images[:, -1]]
    return lines.tobytes().translate(None, b"\0")


def _temp_path_beside(path: Path, suffix: str) -> Path:
    """A fresh hidden name in ``path``'s folder, so that the final rename stays within one file system."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a temporary file beside ``path``, then rename it over ``path``: existence means complete.

    ``write`` must create the file with ``open(tmp, "xb")``: unlike ``mkstemp`` (mode 0600) it honours the umask,
    so the result is readable like any other file.
    """
    tmp = _temp_path_beside(path, ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_ctf(path: PathLike, images: np.ndarray, labels: np.ndarray, block_rows: int = _CTF_BLOCK_ROWS) -> Path:
    """Write images and labels as a CTF file with the fast converter, atomically (temp file + rename)."""
    path = Path(path)
    images = _as_pixel_rows(images)
    labels = _as_label_vector(labels, len(images))

    def write_blocks(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            for start in range(0, len(images), block_rows):
                f.write(encode_ctf_block(images[start:start + block_rows], labels[start:start + block_rows]))

    _replace_atomically(path, write_blocks)
    return path


# --------------------------------------------------------------------------------------------------------------------
# Sources: local folder, verified cache, mirrors


def resolve_cache_dir(cache_dir: Optional[PathLike] = None) -> Path:
    """The cache directory: the argument, else ``$MNIST_CACHE_DIR``, else ``~/.cache/batchai-quickstart/mnist``."""
    chosen = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(chosen).expanduser()


def resolve_mirrors(mirrors: Optional[Sequence[str]] = None) -> List[str]:
    """The mirror base URLs: the argument, else comma-separated ``$MNIST_MIRROR``, else :data:`DEFAULT_MIRRORS`."""
    if mirrors is not None:
        return list(mirrors)
    from_env = [m.strip() for m in os.environ.get(MIRROR_ENV, "").split(",") if m.strip()]
    return from_env or list(DEFAULT_MIRRORS)


def mirror_url(base: str, name: str) -> str:
    """URL of file ``name`` on the mirror whose base URL is ``base`` (with or without trailing slash)."""
    return base.rstrip("/") + "/" + name


def find_local_mnist_files(mnist_dir: Path) -> Tuple[Dict[str, Path], List[str]]:
    """Map each MNIST file name to its copy in ``mnist_dir`` (``.gz`` or not); also list the names not found."""
    found, missing = {}, []
    for name in MNIST_FILES:
        candidates = [mnist_dir / name, mnist_dir / name[:-len(".gz")]]
        existing = [c for c in candidates if c.is_file()]
        if existing:
            found[name] = existing[0]
        else:
            missing.append(name[:-len(".gz")] + "[.gz]")
    return found, missing


class _DownloadProblem(Exception):
    """One failed download attempt; ``retryable`` says whether trying the same URL again may help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def _one_line(exc: BaseException) -> str:
    """A network exception as a short single line.

    requests wraps urllib3 wraps the socket error, each repeating the URL; the innermost error says what happened.
    """
    for _ in range(5):
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            exc = reason
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        else:
            break
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _network_errors() -> tuple:
    """The exception types a failing HTTP transfer raises (requests wraps some urllib3 errors, not all)."""
    # Imported here: reading and converting local files should not pay for (or need) the HTTP stack.
    import requests
    import urllib3

    return requests.RequestException, urllib3.exceptions.HTTPError


def _stream_to_file(response, f, name: str, expected_len: Optional[int]) -> Checksum:
    """Copy the response body, as sent, into ``f``; return the checksum of what arrived.

    Reads ``response.raw`` without Content-Encoding decoding so that the checksum is of the published file.
    """
    from tqdm import tqdm

    md5, sha256, received = hashlib.md5(), hashlib.sha256(), 0
    # disable=None: tqdm shows the bar only when stderr is a terminal.
    with tqdm(total=expected_len, unit="B", unit_scale=True, desc=name, disable=None, leave=False) as bar:
        try:
            for chunk in response.raw.stream(_DOWNLOAD_CHUNK, decode_content=False):
                f.write(chunk)
                md5.update(chunk)
                sha256.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except _network_errors() as exc:
            if expected_len is not None and received < expected_len:
                raise _DownloadProblem(f"truncated: connection closed after {received} of {expected_len} bytes",
                                       retryable=True) from None
            raise _DownloadProblem(f"transfer failed after {received} bytes: {_one_line(exc)}",
                                   retryable=True) from None
    if expected_len is not None and received != expected_len:
        problem = "truncated" if received < expected_len else "overlong"
        raise _DownloadProblem(f"{problem}: received {received} bytes but Content-Length is {expected_len}",
                               retryable=True)
    return Checksum(md5.hexdigest(), sha256.hexdigest(), received)


def _download_once(url: str, dest_dir: Path, name: str, timeout_s: float) -> Tuple[Path, Checksum]:
    """Download ``url`` into a temporary file in ``dest_dir``; return its path and measured checksum.

    Raises :class:`_DownloadProblem`, leaving no temporary file, on connection errors, HTTP errors and truncation.
    """
    import requests

    try:
        response = requests.get(url, stream=True, timeout=timeout_s)
    except _network_errors() as exc:
        raise _DownloadProblem(f"request failed: {_one_line(exc)}", retryable=True) from None
    with response:
        if response.status_code != 200:
            retryable = response.status_code >= 500 or response.status_code == 429
            raise _DownloadProblem(f"HTTP {response.status_code} {response.reason}", retryable)
        length_header = response.headers.get("Content-Length", "")
        expected_len = int(length_header) if length_header.isdigit() else None
        tmp = _temp_path_beside(dest_dir / name, ".part")
        try:
            with open(tmp, "xb") as f:
                actual = _stream_to_file(response, f, name, expected_len)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp, actual


@dataclass
class _Fetcher:
    """Finds verified copies of MNIST files in the cache, downloading missing ones from mirrors."""

    cache_dir: Path
    mirrors: List[str]
    checksums: Mapping[str, Checksum]
    retries: int
    backoff_s: float
    timeout_s: float
    log: Log

    def cached_or_downloaded(self, name: str, tried: List[str]) -> Optional[Path]:
        """Return a verified path for ``name``, or None after appending what failed to ``tried``."""
        cached = self._verified_cache_file(name, tried)
        if cached is not None:
            return cached
        for base in list(self.mirrors):
            path = self._download_from(mirror_url(base, name), name, tried)
            if path is not None:
                # Try this mirror first for the remaining files: those that just failed are likely to fail again.
                self.mirrors.remove(base)
                self.mirrors.insert(0, base)
                return path
        if not self.mirrors:
            tried.append("no mirrors configured")
        return None

    def _verified_cache_file(self, name: str, tried: List[str]) -> Optional[Path]:
        """Return the cached file if present and its checksum still matches; delete it if it does not."""
        path = self.cache_dir / name
        if not path.is_file():
            tried.append(f"cache {path}: absent")
            return None
        problem = self.checksums[name].mismatch(Checksum.of_file(path))
        if problem is None:
            self.log(f"Using cached {path}")
            return path
        # Our own cache: a bad copy is useless (and would fail forever), so remove it and download afresh.
        self.log(f"Cached {path} fails verification ({problem}); deleting it")
        path.unlink(missing_ok=True)
        tried.append(f"cache {path}: {problem}")
        return None

    def _download_from(self, url: str, name: str, tried: List[str]) -> Optional[Path]:
        """Try ``url`` up to ``retries`` times; on success move the verified file into the cache and return it."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"Downloading {url}")
        attempts = max(1, self.retries)
        for attempt in range(1, attempts + 1):
            try:
                tmp, actual = _download_once(url, self.cache_dir, name, self.timeout_s)
            except _DownloadProblem as problem:
                if problem.retryable and attempt < attempts:
                    delay = self.backoff_s * 2 ** (attempt - 1)
                    self.log(f"{url}: {problem} (attempt {attempt}/{attempts}); retrying in {delay:.1f} s")
                    time.sleep(delay)
                    continue
                self.log(f"{url}: {problem}; giving up on this mirror")
                tried.append(f"{url}: {problem}")
                return None
            mismatch = self.checksums[name].mismatch(actual)
            if mismatch is not None:
                # The same bytes would come back on retry: drop them and move on to the next mirror.
                tmp.unlink(missing_ok=True)
                self.log(f"{url}: checksum check failed ({mismatch}); file discarded, trying next mirror")
                tried.append(f"{url}: {mismatch}")
                return None
            destination = self.cache_dir / name
            os.replace(tmp, destination)
            self.log(f"Done: {destination}")
            return destination
        return None  # not reached: the last attempt returns


def obtain_mnist_files(mnist_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
                       mirrors: Optional[Sequence[str]] = None, log: Log = print, *,
                       checksums: Optional[Mapping[str, Checksum]] = None, retries: int = 3,
                       backoff_s: float = 1.0, timeout_s: float = 30.0) -> Dict[str, Path]:
    """Return the paths of the four MNIST files, keyed by their published ``.gz`` names.

    Sources, in order: ``mnist_dir`` if it holds all four files (checked later for structure only, so subsets are
    fine); else per file the cache (md5 re-verified) and then each mirror (``retries`` attempts with exponential
    backoff from ``backoff_s``, checksum-verified, stored in the cache).  ``checksums`` defaults to
    :data:`PUBLISHED_CHECKSUMS`.  Raises :class:`MnistUnavailableError` listing what was tried.
    """
    checksums = dict(PUBLISHED_CHECKSUMS if checksums is None else checksums)
    absent = [name for name in MNIST_FILES if name not in checksums]
    if absent:
        raise ValueError(f"checksums lacks {', '.join(absent)}")
    tried: List[str] = []
    if mnist_dir is None:
        tried.append("no --mnist-dir given")
    else:
        local_dir = Path(mnist_dir).expanduser()
        found, missing = find_local_mnist_files(local_dir)
        if not missing:
            log(f"Using MNIST files from {local_dir}")
            return found
        problem = "does not exist" if not local_dir.is_dir() else f"lacks {', '.join(missing)}"
        log(f"MNIST dir {local_dir} {problem}; trying the cache and mirrors")
        tried.append(f"MNIST dir {local_dir}: {problem}")

    cache = resolve_cache_dir(cache_dir)
    fetcher = _Fetcher(cache, resolve_mirrors(mirrors), checksums, retries, backoff_s, timeout_s, log)
    paths: Dict[str, Path] = {}
    for name in MNIST_FILES:
        file_tried = list(tried)
        path = fetcher.cached_or_downloaded(name, file_tried)
        if path is None:
            raise MnistUnavailableError(
                f"could not obtain {name}; tried: {'; '.join(file_tried)}. Fix: pass --mnist-dir DIR (mnist_dir) "
                f"holding the four MNIST files ({', '.join(MNIST_FILES)}), or --mirror URL (or ${MIRROR_ENV}) "
                f"naming a reachable mirror, or put verified copies in {cache}")
        paths[name] = path
    return paths


# --------------------------------------------------------------------------------------------------------------------
# The whole preparation


def prepare_mnist(out_dir: PathLike, mnist_dir: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
                  mirrors: Optional[Sequence[str]] = None, log: Log = print, *,
                  checksums: Optional[Mapping[str, Checksum]] = None, retries: int = 3, backoff_s: float = 1.0,
                  timeout_s: float = 30.0) -> Tuple[Path, Path]:
    """Write ``Train-28x28_cntk_text.txt`` and ``Test-28x28_cntk_text.txt`` in ``out_dir``; return their paths.

    Does nothing when both already exist and were made from the same source (they are written under temporary
    names and renamed, so existing means complete; a stamp file records the source, so switching between
    ``mnist_dir`` folders, or back to the published files, converts again).  Sources and the keyword options are
    those of :func:`obtain_mnist_files`.
    """
    out_dir = Path(out_dir).expanduser()
    train_out, test_out, stamp = out_dir / TRAIN_CTF_NAME, out_dir / TEST_CTF_NAME, out_dir / SOURCE_STAMP_NAME
    wanted = _wanted_source(mnist_dir, checksums)
    if train_out.is_file() and test_out.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        log(f"{train_out} and {test_out} already exist; skipping conversion")
        return train_out, test_out

    files = obtain_mnist_files(mnist_dir, cache_dir, mirrors, log, checksums=checksums, retries=retries,
                               backoff_s=backoff_s, timeout_s=timeout_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for split, images_name, labels_name, out_path in (("train", TRAIN_IMAGES, TRAIN_LABELS, train_out),
                                                       ("test", TEST_IMAGES, TEST_LABELS, test_out)):
        images, labels = load_split(files[images_name], files[labels_name])
        log(f"Writing {split} text file {out_path} ({len(images)} images)...")
        write_ctf(out_path, images, labels)
        log("Done.")
    stamp.write_text(_source_of(files))
    return train_out, test_out


def _source_of(files: Mapping[str, Path]) -> str:
    """The stamp of a conversion: the md5 of each source file."""
    return "".join("{} {}\n".format(name, Checksum.of_file(files[name]).md5) for name in MNIST_FILES)


def _wanted_source(mnist_dir: Optional[PathLike], checksums: Optional[Mapping[str, Checksum]]) -> str:
    """The stamp a conversion from these sources would have: the local files', else the published ones'."""
    if mnist_dir is not None:
        found, missing = find_local_mnist_files(Path(mnist_dir).expanduser())
        if not missing:
            return _source_of(found)
    published = PUBLISHED_CHECKSUMS if checksums is None else checksums
    return "".join("{} {}\n".format(name, published[name].md5) for name in MNIST_FILES)
