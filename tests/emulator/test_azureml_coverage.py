"""The Azure ML coverage table in docs/coverage.md is what ``python -m emulator.coverage`` generates from
the route table, and its operations are those azure-ai-ml 1.35.2's generated client builds for the emulated groups."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import azure.ai.ml._restclient.arm_ml_service.operations._operations as sdk_operations

from emulator import coverage
from emulator.azureml import coverage as azureml_coverage
from emulator.azureml.urls import url_paths

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "coverage.md"
GROUPS = ("workspaces", "datastores", "code_containers", "code_versions", "data_containers", "data_versions",
          "environment_containers", "environment_versions", "model_containers", "model_versions", "compute", "jobs")


def test_the_documented_table_is_the_generated_one():
    text = DOC.read_text(encoding="utf-8")
    assert coverage.readme_table(text, azureml_coverage.START, azureml_coverage.END) == azureml_coverage.table(), \
        "docs/coverage.md is stale: run python -m emulator.coverage --write docs/coverage.md"


def _sdk_operations() -> set:
    """(operation id, method, path) of every request builder of the emulated groups in the SDK's client."""
    source = inspect.getsource(sdk_operations)
    found = set()
    for match in re.finditer(r"^def build_([a-z_]+)_request\(.*?(?=^def |\Z)", source, re.S | re.M):
        group = max((g for g in GROUPS if match.group(1).startswith(g + "_")), key=len, default=None)
        if group is None:
            continue
        pascal = lambda words: "".join(word.capitalize() for word in words.split("_"))  # noqa: E731
        operation = "{}_{}".format(pascal(group), pascal(match.group(1)[len(group) + 1:]))
        url = re.search(r'_url = "([^"]+)"', match.group(0)).group(1)
        method = re.search(r'method="([A-Z]+)"', match.group(0)).group(1)
        found.add((operation, method, url))
    return found


def test_the_operations_are_the_sdks():
    assert set(azureml_coverage.API_OPERATIONS) == _sdk_operations()


def test_supported_follows_the_route_table():
    rows = {operation: ok for operation, _, ok, _ in azureml_coverage.coverage_rows()}
    assert rows["DataContainers_Get"] and rows["Workspaces_Update"] and not rows["Jobs_Delete"]
    without = [row for row in url_paths if row[2] != "update_workspace"]
    assert not {op: ok for op, _, ok, _ in azureml_coverage.coverage_rows(without)}["Workspaces_Update"]
    for operation, _, ok, note in azureml_coverage.coverage_rows():
        assert ok or note, "{} is not served: say why in emulator/azureml/coverage.py NOTES".format(operation)
        assert not (ok and "not emulated" in note), "{} is served now: update its note".format(operation)


def test_write_updates_the_azureml_table(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n{}\nSTALE TABLE\n{}\nafter\n".format(azureml_coverage.START, azureml_coverage.END))
    assert coverage.main(["--write", str(doc)]) == 0
    text = doc.read_text()
    assert "STALE TABLE" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert coverage.readme_table(text, azureml_coverage.START, azureml_coverage.END) == azureml_coverage.table()
