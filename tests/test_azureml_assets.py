"""Asset containers, versions and labels, archiving, curated environments and workspace updates, through the real
azure-ai-ml 1.35.2 against the emulator (plain HTTP where the SDK hides the wire: paging, refusals)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import requests
from azure.ai.ml import Input, command
from azure.ai.ml.constants import AssetTypes, ListViewType
from azure.ai.ml.entities import AmlCompute, Data, Environment, Workspace
from azure.core.exceptions import ResourceNotFoundError

from doc_blocks import code_block
from emulator.runner import sandbox

from test_azureml_emulator import RG, WS, _job, auth, ml, wait_for, ws_url  # noqa: F401 (ml is a fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _folder(tmp_path, name, text):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "a.txt").write_text(text)
    return str(folder)


def _three_versions(ml, tmp_path):
    for version in ("1", "2", "3"):
        ml.data.create_or_update(Data(name="digits", version=version, type=AssetTypes.URI_FOLDER,
                                      path=_folder(tmp_path, "v" + version, version)))


def test_latest_label_is_the_newest_version_and_folders_end_with_a_slash(ml, tmp_path):
    _three_versions(ml, tmp_path)
    latest = ml.data.get("digits", label="latest")
    assert latest.version == "3" and latest.path.endswith("/v3/")
    assert sorted(d.version for d in ml.data.list(name="digits")) == ["1", "2", "3"]
    assert [d.name for d in ml.data.list()] == ["digits"]
    # A new version without a number takes the container's next one.
    auto = ml.data.create_or_update(Data(name="digits", type=AssetTypes.URI_FOLDER,
                                         path=_folder(tmp_path, "v4", "4")))
    assert auto.version == "4"


def test_a_job_input_at_latest_resolves_to_the_newest_version(ml, emulator, tmp_path):
    _three_versions(ml, tmp_path)
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                 idle_time_before_scale_down=0)).result()
    script = "import sys\nprint(open(sys.argv[1] + '/a.txt').read())\n"
    job = _job(tmp_path, script, inputs={"data": Input(type=AssetTypes.URI_FOLDER, path="azureml:digits@latest")})
    job.command = "python job.py ${{inputs.data}}"
    job = ml.jobs.create_or_update(job)
    assert job.inputs["data"].path == "azureml:digits:3"  # resolved by the SDK through the container
    wait_for(lambda: ml.jobs.get(job.name).status in ("Completed", "Failed"))
    backend = emulator.services["azureml"].backend
    assert ml.jobs.get(job.name).status == "Completed", backend.run_details(RG, WS, job.name)["error"]
    ml.jobs.download(job.name, download_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "artifacts" / "user_logs" / "std_log.txt").read_text() == "3\n"


def test_archive_and_restore_change_what_lists_show(ml, tmp_path):
    _three_versions(ml, tmp_path)
    ml.data.archive("digits", version="3")
    assert sorted(d.version for d in ml.data.list(name="digits")) == ["1", "2"]
    assert [d.version for d in ml.data.list(name="digits", list_view_type=ListViewType.ARCHIVED_ONLY)] == ["3"]
    assert ml.data.get("digits", label="latest").version == "2"  # latest skips archived versions
    ml.data.restore("digits", version="3")
    assert ml.data.get("digits", label="latest").version == "3"
    # The whole container.
    ml.data.archive("digits")
    assert [d.name for d in ml.data.list()] == []
    assert [d.name for d in ml.data.list(list_view_type=ListViewType.ALL)] == ["digits"]
    ml.data.restore("digits")
    assert [d.name for d in ml.data.list()] == ["digits"]


def test_environment_versions_archive_and_resolve_latest(ml):
    for version in ("1", "2"):
        ml.environments.create_or_update(Environment(name="env", version=version, image="python:3.11-slim"))
    assert ml.environments.get("env", label="latest").version == "2"
    ml.environments.archive("env", version="2")
    assert [e.version for e in ml.environments.list(name="env")] == ["1"]
    assert "env" in [e.name for e in ml.environments.list()]
    ml.environments.archive("env")
    assert "env" not in [e.name for e in ml.environments.list()]
    # Without a version, azure-ai-ml reuses the latest one when it is the same, else takes the next.
    versions = [ml.environments.create_or_update(Environment(name="auto", image=image)).version
                for image in ("python:3.10-slim", "python:3.11-slim", "python:3.11-slim")]
    assert versions == ["1", "2", "2"]


def test_curated_environments_are_readable_from_every_workspace(ml):
    sklearn = ml.environments.get("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", version="1")
    assert sklearn.image == "mcr.microsoft.com/azureml/curated/sklearn-1.0-ubuntu20.04-py38-cpu:1"
    assert "scikit-learn" in str(sklearn.conda_file)
    latest = ml.environments.get("AzureML-acpt-pytorch-2.8-cuda12.6", label="latest")
    assert latest.image.startswith("mcr.microsoft.com/azureml/curated/acpt-pytorch-2.8-cuda12.6:")
    names = [e.name for e in ml.environments.list()]
    assert "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu" in names
    with pytest.raises(ResourceNotFoundError):
        ml.environments.get("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", version="999")


def test_version_lists_page_order_and_refuse_unknown_options(ml, emulator, tmp_path, monkeypatch):
    from emulator.azureml import assets

    _three_versions(ml, tmp_path)
    monkeypatch.setattr(assets, "PAGE_SIZE", 2)
    url = ws_url(emulator, "/data/digits/versions?api-version=2025-12-01&$orderBy=createdtime%20asc")
    first = requests.get(url, headers=auth(emulator), verify=emulator.ca_cert, timeout=10).json()
    assert "value" in first, first
    assert [item["name"] for item in first["value"]] == ["1", "2"]
    second = requests.get(first["nextLink"], headers=auth(emulator), verify=emulator.ca_cert, timeout=10).json()
    assert [item["name"] for item in second["value"]] == ["3"] and "nextLink" not in second
    top = requests.get(ws_url(emulator, "/data/digits/versions?api-version=2025-12-01&$top=1"), headers=auth(emulator),
                       verify=emulator.ca_cert, timeout=10).json()
    assert [item["name"] for item in top["value"]] == ["3"] and "nextLink" not in top
    # The SDK pages through the same nextLink.
    assert sorted(d.version for d in ml.data.list(name="digits")) == ["1", "2", "3"]
    bad = requests.get(ws_url(emulator, "/data/digits/versions?api-version=2025-12-01&listViewType=Deleted"),
                       headers=auth(emulator), verify=emulator.ca_cert, timeout=10)
    assert bad.status_code == 400 and "listViewType" in bad.json()["error"]["message"]
    container = requests.get(ws_url(emulator, "/data/digits?api-version=2025-12-01"), headers=auth(emulator),
                             verify=emulator.ca_cert, timeout=10).json()
    assert container["properties"]["latestVersion"] == "3" and container["properties"]["nextVersion"] == "4"
    assert container["type"] == "Microsoft.MachineLearningServices/workspaces/data"


def test_workspace_update_and_create_on_an_existing_one_patch_it(ml):
    workspace = ml.workspaces.get(WS)
    workspace.description = "digits"
    workspace.display_name = "Digits workspace"
    workspace.tags = {"team": "vision"}
    updated = ml.workspaces.begin_update(workspace).result()
    assert (updated.description, updated.display_name) == ("digits", "Digits workspace")
    assert updated.tags["team"] == "vision"
    again = ml.workspaces.begin_create(Workspace(name=WS, location="eastus", tags={"stage": "dev"})).result()
    assert again.tags["team"] == "vision" and again.tags["stage"] == "dev"
    assert ml.workspaces.get(WS).tags["stage"] == "dev"


def test_workspace_patch_refuses_what_it_cannot_change(ml, emulator):
    answer = requests.patch(ws_url(emulator, "?api-version=2025-12-01"), json={"properties": {"location": "x"}},
                            headers=auth(emulator), verify=emulator.ca_cert, timeout=10)
    assert answer.status_code == 400 and "properties.location" in answer.json()["error"]["message"]


# ---- environments that install ------------------------------------------------------------------------------

def _env_job(ml, tmp_path, env_name, conda_text, script):
    conda = tmp_path / "{}.yaml".format(env_name)
    conda.write_text(conda_text)
    ml.environments.create_or_update(Environment(name=env_name, version="1", conda_file=str(conda),
                                                 image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"))
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "job.py").write_text(script)
    return ml.jobs.create_or_update(command(code=str(code), command="python job.py", environment=env_name + "@latest",
                                            compute="cpu", experiment_name="tests"))


def _build_log(ml, job_name, tmp_path):
    ml.jobs.download(job_name, download_path=str(tmp_path / job_name))
    return (tmp_path / job_name / "artifacts" / "azureml-logs" / "20_image_build_log.txt").read_text()


def test_a_conda_environment_is_built_once_and_shared_by_jobs(ml, emulator, tmp_path):
    installed_here = importlib.util.find_spec("six") is not None
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                 idle_time_before_scale_down=0)).result()
    conda = "name: six\ndependencies:\n- python=3.11\n- pip\n- pip:\n  - six==1.16.0\n  - pyyaml\n"
    script = ("import os, sys, six, yaml\n"
              "print(six.__version__, os.environ['VIRTUAL_ENV'] == sys.prefix, yaml.__file__.startswith(sys.prefix))\n"
              "try:\n    open(os.path.join(sys.prefix, 'poison.pth'), 'w')\n    print('build writable')\n"
              "except OSError:\n    print('build read-only')\n")
    first = _env_job(ml, tmp_path, "six-env", conda, script)
    wait_for(lambda: ml.jobs.get(first.name).status in ("Completed", "Failed"), timeout=300)
    assert ml.jobs.get(first.name).status == "Completed", _build_log(ml, first.name, tmp_path)
    log = _build_log(ml, first.name, tmp_path)
    assert "Image build succeeded in" in log and "Running: pip install six==1.16.0 pyyaml" in log
    assert installed_here or "Successfully installed six-1.16.0" in log
    assert "Requirement already satisfied: pyyaml" in log  # the emulator's own packages are not installed again
    assert "Conda dependencies recorded, provided by the emulator's interpreter: python=3.11, pip" in log
    user_log = tmp_path / first.name / "artifacts" / "user_logs" / "std_log.txt"
    # The build is shared between jobs: where Landlock is in force, a job can run it but not change it.
    landlock = sandbox.capabilities()[0] > 0
    assert user_log.read_text() == "1.16.0 True False\nbuild {}\n".format("read-only" if landlock else "writable")
    # A second job on the same environment takes the build from the cache.
    second = ml.jobs.create_or_update(command(code=str(tmp_path / "code"), command="python job.py",
                                              environment="six-env@latest", compute="cpu", experiment_name="tests"))
    wait_for(lambda: ml.jobs.get(second.name).status in ("Completed", "Failed"), timeout=120)
    assert ml.jobs.get(second.name).status == "Completed"
    log = _build_log(ml, second.name, tmp_path)
    assert "found in the cache" in log and "pip install" not in log and "Image build succeeded" not in log


def test_an_uninstallable_dependency_fails_the_job_with_the_image_build_error(ml, emulator, tmp_path):
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                 idle_time_before_scale_down=0)).result()
    conda = "name: bad\ndependencies:\n- pip:\n  - emulator-test-no-such-package-4f1c==1.0\n"
    job = _env_job(ml, tmp_path, "bad-env", conda, "print('never')\n")
    wait_for(lambda: ml.jobs.get(job.name).status in ("Completed", "Failed"), timeout=300)
    assert ml.jobs.get(job.name).status == "Failed"
    error = emulator.services["azureml"].backend.run_details(RG, WS, job.name)["error"]["error"]
    assert error["message"] == ("Image build failed. For more details, check log file "
                                "azureml-logs/20_image_build_log.txt.")
    assert error["messageParameters"] == {"ArtifactPath": "azureml-logs/20_image_build_log.txt"}
    log = _build_log(ml, job.name, tmp_path)
    assert "ERROR: pip could not install emulator-test-no-such-package-4f1c==1.0" in log
    assert "Image build failed after" in log


# ---- idle scale-down -----------------------------------------------------------------------------------------

def test_idle_nodes_stay_for_the_computes_idle_time(ml, emulator, tmp_path):
    backend = emulator.services["azureml"].backend

    def nodes():
        return backend.get_compute(RG, WS, "cpu")["properties"]["properties"]["currentNodeCount"]

    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                 idle_time_before_scale_down=600)).result()
    first = ml.jobs.create_or_update(_job(tmp_path, "print('one')\n"))
    wait_for(lambda: ml.jobs.get(first.name).status == "Completed")
    node = backend.records.nodes(backend._compute_row(RG, WS, "cpu")["id"])
    assert nodes() == 1 and [n.state for n in node] == ["idle"]  # kept: 600 s have not passed
    second = ml.jobs.create_or_update(_job(tmp_path, "print('two')\n"))
    wait_for(lambda: ml.jobs.get(second.name).status == "Completed")
    compute_id = backend._compute_row(RG, WS, "cpu")["id"]
    assert [n.node_id for n in backend.records.nodes(compute_id)] == [node[0].node_id]  # the same node ran it
    # A shorter idle time (the SDK's own setting) lets it go.
    updated = ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D2_v3", max_instances=1,
                                                           idle_time_before_scale_down=1)).result()
    assert updated.idle_time_before_scale_down == 1
    wait_for(lambda: nodes() == 0)


# ---- the documentation's example ------------------------------------------------------------------------------

def test_the_documented_example_runs(ml, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = code_block("docs/azureml-assets.md", "Try it")
    exec(compile(code, "docs/azureml-assets.md", "exec"), {"ml_client": ml})
    printed = capsys.readouterr().out
    job = [line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("RunId: ")][0]
    assert ml.jobs.get(job).status == "Completed"
    # The build log is the job's (jobs.stream shows it too when it starts streaming while the build still runs;
    # a quick build can be over by then, so the test reads it from the job's files, not from what was streamed).
    assert "Building image azureml_" in _build_log(ml, job, tmp_path)
    assert printed.rstrip().endswith("mcr.microsoft.com/azureml/curated/sklearn-1.0-ubuntu20.04-py38-cpu:33")
