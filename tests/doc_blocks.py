"""The code blocks of README.md and docs/*.md, found by the heading they stand under, for the tests that run them
(each block a user would run is run by a test; tests/test_docs.py checks that none is left out)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = ("sh", "python", "ini")  # fenced blocks a reader runs or copies; plain ``` blocks show output
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
_HEADING = re.compile(r"^(#{1,6}) (.+)$", re.M)


def blocks(document: str) -> list:
    """[(heading, language, code)] of a Markdown file (path relative to the repository root), in order."""
    text = (ROOT / document).read_text(encoding="utf-8")
    headings = [(m.start(), m.group(2).strip()) for m in _HEADING.finditer(_without_fences(text))]
    found = []
    for fence in _FENCE.finditer(text):
        above = [title for position, title in headings if position < fence.start()]
        found.append((above[-1] if above else "", fence.group(1), fence.group(2)))
    return found


def code_block(document: str, heading: str, language: str = "python", index: int = 0) -> str:
    """The ``index``-th block of ``language`` under ``heading`` (the nearest heading above it)."""
    matching = [code for title, lang, code in blocks(document) if title == heading and lang == language]
    if len(matching) <= index:
        raise LookupError("{} has no {} block number {} under '{}'".format(document, language, index, heading))
    return matching[index]


def documents() -> list:
    """README.md and every Markdown file under docs/, as paths relative to the repository root."""
    return ["README.md"] + sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))


def _without_fences(text: str) -> str:
    """``text`` with fenced blocks blanked out (same length), so that '# comment' lines are not headings."""
    return _FENCE.sub(lambda m: " " * len(m.group(0)), text)


def quickstart_command(document: str, heading: str) -> tuple:
    """A documented ``.venv/bin/python SCRIPT --mnist-dir DIR ARGS...`` line as (SCRIPT, DIR, [ARGS...])."""
    words = code_block(document, heading, "sh").split()
    if words[:1] != [".venv/bin/python"] or words[2:3] != ["--mnist-dir"]:
        raise ValueError("{} ({}) does not run a quickstart as expected: {}".format(document, heading, words))
    return words[1], words[3], words[4:]


#: What this project's machines preset for TLS (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE): documented
#: blocks that point a shell at the emulator's proxy must override it.
PRESET_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def run_shell_block(block: str, home, extra_env: dict = None, timeout: float = 900, merged_output: bool = False):
    """A documented shell block run as a reader runs it: ``bash -e`` in ``home`` (also $HOME, with the repository on
    PYTHONPATH), over the TLS presets and a NO_PROXY it must override, plus ``extra_env``. Whatever the block left
    running (an emulator it started) is stopped with its process group. Returns the CompletedProcess (stderr in
    stdout with ``merged_output``)."""
    import os
    import signal
    import subprocess

    env = {"HOME": str(home), "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "REQUESTS_CA_BUNDLE": PRESET_CA_BUNDLE, "CURL_CA_BUNDLE": PRESET_CA_BUNDLE,
           "SSL_CERT_FILE": PRESET_CA_BUNDLE, "NO_PROXY": "*", **(extra_env or {})}
    process = subprocess.Popen(["bash", "-e", "-c", block], cwd=str(home), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT if merged_output else subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        try:  # the emulator the block started, should the block have failed before stopping it
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr or "")
