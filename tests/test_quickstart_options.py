"""quickstart.py's command line reaches the configuration: --low-priority and --preempt-once."""
from __future__ import annotations

import importlib.util

import pytest
from test_config import EXAMPLE, ROOT, write_config

from batchai_quickstart.config import ConfigError


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart_script", ROOT / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("options,priority", [
    ([], "dedicated"),
    (["--low-priority"], "lowpriority"),
    (["--preempt-once"], "lowpriority"),  # preempting needs preemptible nodes
])
def test_vm_priority_from_the_command_line(options, priority):
    quickstart = _quickstart()
    config = quickstart._read_config(quickstart.parse_args(["--config", str(EXAMPLE), *options]))
    assert config.vm_priority == priority


def test_low_priority_overrides_the_file(tmp_path):
    quickstart = _quickstart()
    path = write_config(tmp_path, resources__vm_priority="dedicated")
    assert quickstart._read_config(quickstart.parse_args(["--config", str(path), "--low-priority"])).vm_priority \
        == "lowpriority"


def test_preempt_once_on_the_azure_target_is_refused_before_its_other_checks():
    quickstart = _quickstart()
    # The example's azure placeholders would be the first error otherwise.
    with pytest.raises(ConfigError, match=r"^--preempt-once needs the local target"):
        quickstart._read_config(quickstart.parse_args(["--config", str(EXAMPLE), "--target", "azure",
                                                       "--preempt-once"]))
