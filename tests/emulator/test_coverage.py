"""The coverage tables of docs/coverage.md are what ``python -m emulator.coverage`` prints, and its list of
operations is the 2018-05-01 API as azure-mgmt-batchai 7.0.0 calls it."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import azure.mgmt.batchai.operations as sdk_operations

from emulator import coverage
from emulator.batchai.urls import url_paths

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")
    printed = subprocess.run([sys.executable, "-m", "emulator.coverage"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert printed == coverage.table() + "\n\n" + coverage.storage_table() + "\n\n" + \
        coverage.azureml_coverage.table() + "\n"
    stale = "docs/coverage.md is stale: run python -m emulator.coverage --write docs/coverage.md"
    assert coverage.readme_table(readme) == coverage.table(), stale
    assert coverage.readme_table(readme, coverage.STORAGE_START, coverage.STORAGE_END) == coverage.storage_table(), \
        stale
    assert "| Blob | put block list | `PUT /{account}/{container}/{blob}?comp=blocklist` | c or w |" in \
        coverage.storage_table()


def _sdk_operations() -> set:
    """(method, path) of every operation the SDK's generated code sends (its URL metadata and verb)."""
    found = set()
    for _, cls in inspect.getmembers(sdk_operations, inspect.isclass):
        source = inspect.getsource(cls)
        for name, url in re.findall(r"\n    (\w+)\.metadata = \{'url': '([^']+)'\}", source):
            if name.startswith("begin_"):
                name = "_{}_initial".format(name[len("begin_"):])
            body = re.search(r"def {}\(.*?(?=\n    def |\Z)".format(re.escape(name)), source, re.S).group(0)
            verb = re.search(r"self\._client\.(get|put|post|delete|patch)\(", body).group(1)
            found.add((verb.upper(), url))
    return found


def test_the_operations_are_the_sdks():
    """All that the SDK sends, and the two file server operations the specification had in 2018 and
    dropped later (azure-mgmt-batchai 7.0.0, generated from the later file, cannot call them)."""
    listed = {(method, path) for _, method, path in coverage.API_OPERATIONS}
    file_server = coverage._WS + "/fileServers/{fileServerName}"
    assert listed - _sdk_operations() == {("GET", file_server), ("DELETE", file_server)}
    assert _sdk_operations() <= listed


def test_supported_follows_the_route_table():
    rows = {operation: ok for operation, _, ok, _ in coverage.coverage_rows()}
    assert rows["Jobs_Create"] and rows["Usages_List"] and rows["Operations_List"]
    without_terminate = [row for row in url_paths if row[2] != "terminate_job"]
    rows = {operation: ok for operation, _, ok, _ in coverage.coverage_rows(without_terminate)}
    assert not rows["Jobs_Terminate"] and rows["Jobs_Create"]
    for operation, _, ok, note in coverage.coverage_rows():
        assert ok or note, "{} is not served: say why in coverage.NOTES".format(operation)
        assert not (ok and "not emulated" in note), "{} is served now: update its note".format(operation)


def test_write_replaces_only_the_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n{}\nold table\n{}\nafter\n".format(coverage.START, coverage.END))
    assert coverage.main(["--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "old table" not in text
    assert coverage.readme_table(text) == coverage.table()
    (tmp_path / "plain.md").write_text("no markers\n")
    assert coverage.main(["--write", str(tmp_path / "plain.md")]) == 2
