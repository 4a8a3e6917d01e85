"""Unit tests of the path helper (emulator/core/paths.py) and of Azure ML's naming rules
(emulator/azureml/names.py); test_hardening_paths.py sends the same values through real HTTP."""
from __future__ import annotations

import os
import types

import pytest

from emulator.azureml import names
from emulator.azureml.jobstore import AzureMLJobStore
from emulator.core.arm import ArmError
from emulator.core.paths import PathOutsideRoot, inside, is_link_free


@pytest.mark.parametrize("parts", [("..",), ("a", ".."), ("a/../..",), ("a/../b",), ("/etc",), ("a", "/etc"),
                                   (".",), ("a", "."), ("a/./b",), ("a//b",), ("",), ("a\0b",), ()])
def test_inside_refuses_what_leaves_the_root_or_is_the_root(tmp_path, parts):
    with pytest.raises(PathOutsideRoot):
        inside(tmp_path, *parts)


def test_inside_joins_what_stays_below_the_root(tmp_path):
    assert inside(tmp_path, "a", "b") == tmp_path / "a" / "b"
    assert inside(tmp_path, "a/b") == tmp_path / "a" / "b"
    assert inside(tmp_path, "rg", "ws", "job-1") == tmp_path / "rg" / "ws" / "job-1"


def test_inside_refuses_links_out_of_the_root_unless_only_the_last_part_is_one(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "inner").mkdir()
    (root / "inner-link").symlink_to(root / "inner", target_is_directory=True)
    with pytest.raises(PathOutsideRoot):
        inside(root, "link")
    with pytest.raises(PathOutsideRoot):
        inside(root, "link", "file")
    assert inside(root, "inner-link", "x") == root / "inner-link" / "x"  # a link that stays inside is fine
    # a mount point is itself a link the caller replaces: its own target is not judged, its place is
    assert inside(root, "link", follow_last=False) == root / "link"
    with pytest.raises(PathOutsideRoot):
        inside(root, "link", "file", follow_last=False)
    with pytest.raises(PathOutsideRoot):
        inside(root, "a", "..", follow_last=False)


def test_is_link_free_sees_a_link_anywhere_from_the_root_down(tmp_path):
    (tmp_path / "code" / "outputs").mkdir(parents=True)
    assert is_link_free(tmp_path, tmp_path / "code" / "outputs")
    (tmp_path / "elsewhere").mkdir()
    os.rmdir(tmp_path / "code" / "outputs")
    (tmp_path / "code" / "outputs").symlink_to(tmp_path / "elsewhere")
    assert not is_link_free(tmp_path, tmp_path / "code" / "outputs")
    assert not is_link_free(tmp_path / "code", tmp_path / "other")
    assert not is_link_free(tmp_path, tmp_path.parent)


def test_an_azure_ml_job_named_dot_dot_has_no_directory(tmp_path):
    """Finding 2's second line: even a row the API would not have let in cannot name the jobs root."""
    store = AzureMLJobStore(types.SimpleNamespace(store=None, storage=None), tmp_path)
    assert store.job_dir({"resource_group": "rg", "workspace": "ws", "name": "job1"}) == tmp_path / "jobs/rg/ws/job1"
    for name in ("..", ".", "../..", "/tmp"):
        with pytest.raises(PathOutsideRoot):
            store.job_dir({"resource_group": "rg", "workspace": "ws", "name": name})


@pytest.mark.parametrize("rule, good, bad", [
    ("job", ["job1", "loyal_pot_x1y2", "A-b_c"], ["..", ".", "a.b", "-a", "_a", "a/b", "a\n", "", "x" * 256]),
    ("compute", ["cpu", "gpu-cluster", "cpu-a1"], ["..", "ab", "1abc", "cpu-1", "a_b", "x" * 25]),
    ("workspace", ["ws", "my_ws-1"], ["..", "-ws", "w.s", "x" * 34]),
    ("asset", ["digits", "AzureML-acpt-pytorch-2.8-cuda12.6", "a" * 255], ["..", ".a", "a/b", "", "a" * 256]),
    ("version", ["1", "2024.1.0", "v-1"], [".", "..", "a/b", "a\\b", "a\0", "", "1" * 256]),
    ("experiment", ["Default", "mnist-quickstart", "exp.1"], ["..", "../x", "/abs", ".hidden", "a b"]),
    ("io", ["training_data", "_x", "model_output"], ["..", "../x", "/abs", "a.b", "1a", "a-b", ""]),
])
def test_azure_ml_names(rule, good, bad):
    for value in good:
        assert names.check(rule, value, "prop") == value
    for value in bad:
        with pytest.raises(ArmError) as info:
            names.check(rule, value, "properties.inputs key")
        assert info.value.status == 400 and "properties.inputs key" in info.value.message, value
