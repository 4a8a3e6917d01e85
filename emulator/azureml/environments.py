"""Environments that install: a job whose environment carries a conda specification runs in a virtual
environment built from its ``pip:`` dependencies, as the service builds an image from the environment.

- The virtual environment is made with ``python -m venv --system-site-packages`` on the emulator's own
  interpreter, and a ``.pth`` file puts the emulator's own site-packages on its path too (the emulator
  usually runs from a virtual environment itself, whose packages ``--system-site-packages`` alone would
  not show). So what is installed already (torch, for the quickstart) is seen by pip and not installed again.
- Builds are cached by the hash of the pip dependencies under ``<data dir>/azureml/envs/<hash>`` and
  shared by every job and workspace; a second job on the same environment does not build again.
- The image is recorded, not pulled. Conda packages other than pip's (``python=3.8``, ``numpy``) are
  recorded too: the emulator's interpreter stands for them.
- The build is written to the job's ``azureml-logs/20_image_build_log.txt`` with its time, as the service
  writes its image build log there (the file ``jobs.stream`` falls back to before ``user_logs`` exist,
  and that ``jobs.download`` fetches with the other logs). A dependency that cannot be installed fails the
  job with the service's image-build error, and the log names the package pip could not install.
- Curated environments (curated.py) are prebuilt images on the service: nothing is built for them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import site
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import yaml

from . import curated
from . import exceptions as errors
from .assets import asset_name

log = logging.getLogger("emulator.azureml")

BUILD_LOG = "20_image_build_log.txt"
BUILD_LOG_PATH = "azureml-logs/" + BUILD_LOG
BUILD_TIMEOUT_SECONDS = 3600
UPLOAD_EVERY_SECONDS = 0.5
COMPLETE = ".emulator-build-complete"  # written last: a directory without it is a build that did not finish
_ENV_ID = re.compile(r"/environments/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
_SHORT = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))$")
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
_FAILED_PACKAGE = re.compile(r"(?:Could not find a version that satisfies the requirement|"
                             r"Failed to build|Failed building wheel for|"
                             r"ERROR: Could not install packages due to an OSError.*?for) (\S+)")


class BuildFailed(Exception):
    """The environment could not be built; ``error`` is the job's RunHistory error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.error = errors.image_build_failed(BUILD_LOG_PATH)


def pip_requirements(conda) -> tuple:
    """(pip requirements, other conda dependencies) of a conda specification (YAML text or a mapping)."""
    spec = yaml.safe_load(conda) if isinstance(conda, str) else conda
    if not isinstance(spec, dict):
        raise BuildFailed("the conda specification is not a YAML mapping")
    pip, others = [], []
    for dependency in spec.get("dependencies") or []:
        if isinstance(dependency, dict) and "pip" in dependency:
            pip += [str(item) for item in dependency["pip"] or []]
        elif isinstance(dependency, str):
            others.append(dependency)
    return pip, others


class EnvironmentBuilds:
    """Builds and caches the virtual environments of custom environments."""

    def __init__(self, backend, root: Path, data_dir: Path) -> None:
        self.backend = backend
        self.root = root
        self.data_dir = data_dir  # the emulator's: its CA is not the package index's
        self._locks: dict = {}
        self._guard = threading.Lock()

    # ---- which environment a job has ------------------------------------------------------------

    def definition(self, row, environment_id: str) -> Optional[dict]:
        """The environment version's properties, or None where nothing is built (curated, registries, unknown)."""
        match = _ENV_ID.search(environment_id) or _SHORT.match(environment_id)
        if not match or environment_id.startswith("azureml://"):
            return None
        name = asset_name(match.group("name"))
        if curated.find(name):
            return None
        rg, ws = row["resource_group"], row["workspace"]
        version = match.groupdict().get("version") or self.backend.assets.latest_version(rg, ws, "environments",
                                                                                         name)
        try:
            return self.backend.assets.get_version(rg, ws, "environments", name, version or "")["properties"]
        except errors.ArmError:
            return None

    # ---- building -------------------------------------------------------------------------------

    def prepare(self, row, environment_id: str, log_path: Path, upload: Callable[[Path], None]) -> Optional[Path]:
        """The virtual environment a job runs in (built now or taken from the cache), or None where the job runs
        with the emulator's own interpreter. Writes the build log to ``log_path`` and ``upload``s it as it grows."""
        properties = self.definition(row, environment_id)
        if not properties or not properties.get("condaFile"):
            return None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with _BuildLog(log_path, upload) as build_log:
            build_log.line("Environment {} (image {}: recorded, not pulled)".format(
                environment_id, properties.get("image") or "none"))
            try:
                pip, others = pip_requirements(properties["condaFile"])
            except yaml.YAMLError as exc:
                build_log.line("The conda specification is not valid YAML: {}".format(exc))
                raise BuildFailed("the conda specification is not valid YAML") from None
            if others:
                build_log.line("Conda dependencies recorded, provided by the emulator's interpreter: {}".format(
                    ", ".join(others)))
            key = hashlib.sha256(json.dumps(pip).encode()).hexdigest()[:32]
            target = self.root / key
            with self._lock(key):
                if (target / COMPLETE).exists():
                    build_log.line("Image azureml_{} found in the cache (built {}): no build needed".format(
                        key, (target / COMPLETE).read_text().strip()))
                    return target
                started = time.monotonic()
                build_log.line("Building image azureml_{}: a virtual environment on {} {}".format(
                    key, sys.executable, ".".join(map(str, sys.version_info[:3]))))
                try:
                    self._build(target, pip, build_log)
                except BuildFailed as exc:
                    shutil.rmtree(target, ignore_errors=True)
                    build_log.line("Image build failed after {:.1f} s: {}".format(time.monotonic() - started, exc))
                    raise
                (target / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
                build_log.line("Image build succeeded in {:.1f} s".format(time.monotonic() - started))
                log.info("environment %s built in %s", environment_id, target)
                return target

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _build(self, target: Path, pip: list, build_log: "_BuildLog") -> None:
        shutil.rmtree(target, ignore_errors=True)  # a build that did not finish
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(target)], build_log)
        python = target / "bin" / "python"
        purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        own = [path for path in site.getsitepackages() if os.path.isdir(path)]
        Path(purelib, "_emulator_site_packages.pth").write_text("".join(path + "\n" for path in own))
        if not pip:
            build_log.line("No pip dependencies: nothing to install")
            return
        build_log.line("Running: pip install {}".format(" ".join(pip)))
        code = self._run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input",
                          "--disable-pip-version-check", "--progress-bar", "off", *pip], build_log, check=False)
        if code != 0:
            failed = build_log.failed_package() or ", ".join(pip)
            build_log.line("ERROR: pip could not install {}".format(failed))
            raise BuildFailed("pip could not install {}".format(failed))

    def _run(self, argv: list, build_log: "_BuildLog", check: bool = True) -> int:
        env = dict(os.environ, PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)  # the environment sees the emulator's packages through its .pth, not this
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            # A client pointed at the emulator trusts only the emulator's CA; pip talks to the package index.
            if env.get(name) and Path(env[name]).resolve().is_relative_to(self.data_dir.resolve()):
                del env[name]
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                       stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise BuildFailed("could not start {}: {}".format(argv[0], exc)) from None
        deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
        for line in process.stdout:
            build_log.output(line.rstrip("\n"))
            if time.monotonic() > deadline:
                process.kill()
        code = process.wait()
        if check and code != 0:
            raise BuildFailed("{} exited with status {}".format(" ".join(argv[:3]), code))
        return code


class _BuildLog:
    """The job's image build log: timestamped lines, uploaded while it grows (every UPLOAD_EVERY_SECONDS)."""

    def __init__(self, path: Path, upload: Callable[[Path], None]) -> None:
        self.path, self.upload = path, upload
        self._file = None
        self._uploaded = 0.0
        self._output: list = []

    def __enter__(self) -> "_BuildLog":
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()
        self._upload(force=True)

    def line(self, text: str) -> None:
        self._write("{}: {}".format(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), text))

    def output(self, text: str) -> None:
        self._output.append(text)
        self._write(text)

    def failed_package(self) -> Optional[str]:
        for pattern in (_NO_DISTRIBUTION, _FAILED_PACKAGE):
            for text in self._output:
                found = pattern.search(text)
                if found:
                    return found.group(1)
        return None

    def _write(self, text: str) -> None:
        self._file.write(text + "\n")
        self._file.flush()
        self._upload()

    def _upload(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._uploaded >= UPLOAD_EVERY_SECONDS:
            self._uploaded = now
            try:
                self.upload(self.path)
            except Exception:  # the log is uploaded again later; the build goes on
                log.exception("could not upload the image build log")
