"""README.md and docs/ stay true: every relative link resolves (files and #anchors), and every block a reader
runs or copies (```sh, ```python, ```ini) is run by a test or by .ci/run, which this module checks by name."""
from __future__ import annotations

import re
from unittest import mock

import pytest

from doc_blocks import ROOT, RUNNABLE, blocks, code_block, documents

# (document, heading, language, n-th such block under the heading) -> what runs it. A test file runs its
# block through doc_blocks (code_block / quickstart_command naming the document and heading): checked below.
RUN_BY = {
    ("README.md", "Two commands", "sh", 0): ".ci/run",
    ("README.md", "Two commands", "sh", 1): ".ci/run",
    ("README.md", "Copying one step", "python", 0): "tests/test_docs.py",
    ("README.md", "Run the 2017 tutorial as printed", "sh", 0): "tests/test_tutorial_2017.py",
    ("README.md", "Run the 2017 tutorial as printed", "sh", 1): "tests/test_tutorial_2017.py",
    ("docs/azure-ad.md", "Python, with azure-identity, straight to the emulator", "python", 0):
        "tests/emulator/test_aad.py",
    ("docs/azure-ad.md", "Unchanged code and the Azure CLI, through the proxy", "sh", 0): "tests/emulator/test_aad_cli.py",
    ("docs/any-azure-client.md", "Point one shell at it", "sh", 0): "tests/emulator/test_proxy.py",
    ("docs/any-azure-client.md", "Point one shell at it", "python", 0): "tests/emulator/test_proxy.py",
    ("docs/any-azure-client.md", "Java", "sh", 0): "tests/emulator/test_proxy.py",
    ("docs/benchmarks-storage.md", "Running them", "sh", 0): "tests/test_bench_smoke.py",
    ("docs/azure-target.md", "Offline, through the emulator's proxy", "sh", 0):
        "tests/test_quickstart_azure_target_e2e.py",
    ("docs/azureml-assets.md", "Try it", "python", 0): "tests/test_azureml_assets.py",
    ("docs/azureml.md", "The same quickstart on Azure Machine Learning", "sh", 0):
        "tests/test_quickstart_azureml_e2e.py",
    ("docs/cntk.md", "The CNTK path", "sh", 0): "tests/test_sample_cntk.py",
    ("docs/distributed.md", "Training on several nodes", "sh", 0): "tests/test_quickstart_nodes_e2e.py",
    ("docs/emulator.md", "Running it on its own", "sh", 0): "tests/emulator/test_cli.py",
    ("docs/emulator.md", "Blob storage", "python", 0): "tests/emulator/test_blob.py",
    ("docs/preemption.md", "Low-priority nodes and preemption", "sh", 0): "tests/test_quickstart_preemption_e2e.py",
    ("docs/preemption.md", "The emulator's controls", "python", 0): "tests/emulator/test_preemption.py",
}

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def runnable_blocks() -> set:
    found = set()
    for document in documents():
        counts: dict = {}
        for heading, language, _ in blocks(document):
            if language in RUNNABLE:
                key = (document, heading, language)
                found.add(key + (counts.get(key, 0),))
                counts[key] = counts.get(key, 0) + 1
    return found


def test_every_runnable_block_has_a_runner():
    found = runnable_blocks()
    assert found - set(RUN_BY) == set(), "blocks no test runs: add a test and list it in RUN_BY"
    assert set(RUN_BY) - found == set(), "RUN_BY lists blocks the documents no longer have"


@pytest.mark.parametrize("key", sorted(k for k, runner in RUN_BY.items() if runner.startswith("tests/")))
def test_each_runner_reads_its_block_from_the_document(key):
    document, heading, _, _ = key
    source = (ROOT / RUN_BY[key]).read_text(encoding="utf-8")
    assert re.search(r"""(code_block|quickstart_command)\(\s*["']{}["'],\s*["']{}["']""".format(
        re.escape(document), re.escape(heading)), source), "{} does not run {} ({})".format(RUN_BY[key], document,
                                                                                             heading)


def test_ci_runs_the_two_commands():
    """.ci/run runs the README's two commands as written, but for pip's -q and MNIST from the shared folder
    or, where there is none, the committed subset."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace(" -q ", " ")
    setup, tests = code_block("README.md", "Two commands", "sh", 0), code_block("README.md", "Two commands", "sh", 1)
    for part in setup.strip().split(" && "):
        assert part.replace("../shared/data/mnist", '"$mnist_dir"') in ci, part
    assert "mnist_dir=../shared/data/mnist" in ci
    assert tests.strip() in ci.splitlines()


def test_copying_one_step_runs():
    """The README's example of one step copied out: create_job sends the job that the quickstart sends."""
    code = code_block("README.md", "Copying one step")
    cluster = mock.Mock(id="/subscriptions/s/resourceGroups/batchaiquickstartrg/providers/Microsoft.BatchAI/"
                           "workspaces/myworkspace/clusters/mycluster")
    with mock.patch("azure.mgmt.batchai.BatchAI") as client_class:
        scope = {"credential": mock.sentinel.credential, "subscription_id": "s", "cluster": cluster}
        exec(compile(code, "README.md (Copying one step)", "exec"), scope)
    client_class.assert_called_once_with(mock.sentinel.credential, "s")
    (group, workspace, experiment, name, parameters), _ = client_class.return_value.jobs.begin_create.call_args
    assert (group, workspace, experiment, name) == ("batchaiquickstartrg", "myworkspace", "myexperiment", "myjob")
    assert parameters.cluster.id == cluster.id
    assert parameters.container_settings.image_source_registry.image == \
        "microsoft/cntk:2.1-gpu-python3.5-cuda8.0-cudnn6.0"
    assert scope["job"] is client_class.return_value.jobs.begin_create.return_value.result.return_value


def _anchors(document: str) -> set:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"^```.*?^```$", "", (ROOT / document).read_text(encoding="utf-8"), flags=re.M | re.S)
    anchors, seen = set(), {}
    for title in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else "{}-{}".format(slug, seen[slug]))
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("document", documents())
def test_relative_links_resolve(document):
    text = re.sub(r"^```.*?^```$", "", (ROOT / document).read_text(encoding="utf-8"), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans: a regex like [a-z](?!...) is no link
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (ROOT / document).parent / path if path else ROOT / document
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.relative_to(ROOT).as_posix()):
            broken.append(target)
    assert broken == [], "{}: broken links {}".format(document, broken)
