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
