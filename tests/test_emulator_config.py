"""batchai_quickstart.emulator_config: the emulator's JSON line into a config file for --target azure."""
from __future__ import annotations

import json
import stat

import pytest

from batchai_quickstart.config import load_config
from batchai_quickstart.emulator_config import EXAMPLE, main, write_config

DESCRIBED = {"client_id": "c4ff3262-4b5f-4078-bc2e-197430901956", "client_secret": "U_Pea-secret",
             "tenant_id": "e4ccd40b-f0b8-4cde-b8ac-ffc81de16a26", "subscription_id": "01db6b9f-cf20-4602-bf84",
             "account_name": "batchaiemulator", "account_key": "RF2q+key==", "https_proxy": "http://127.0.0.1:1"}


def test_the_written_config_loads_on_the_azure_target_with_the_emulator_values(tmp_path):
    (tmp_path / "emulator.json").write_text(json.dumps(DESCRIBED) + "\n")
    assert main([str(tmp_path / "emulator.json"), "--config", str(tmp_path / "offline.ini")]) == 0
    path = tmp_path / "offline.ini"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path, target="azure")
    assert (config.client_id, config.secret, config.tenant_id) == (
        DESCRIBED["client_id"], DESCRIBED["client_secret"], DESCRIBED["tenant_id"])
    assert config.token_uri == "https://login.microsoftonline.com/{}/oauth2/token".format(DESCRIBED["tenant_id"])
    assert (config.subscription_id, config.storage_account_name, config.storage_account_key) == (
        DESCRIBED["subscription_id"], DESCRIBED["account_name"], DESCRIBED["account_key"])
    password = config.admin_user_password
    assert len(password) >= 16 and "FILL-IN-HERE" not in password
    # Comments and the other settings are those of config.example.ini; the target stays as it was.
    text = path.read_text()
    assert text.count("\n#") == EXAMPLE.read_text().count("\n#")
    assert load_config(path).target == "local"
    # A second write keeps the password already set.
    assert main([str(tmp_path / "emulator.json"), "--config", str(path)]) == 0
    assert load_config(path, target="azure").admin_user_password == password


def test_a_json_line_without_the_proxy_is_one_line(tmp_path, capsys):
    (tmp_path / "emulator.json").write_text(json.dumps(dict(DESCRIBED, https_proxy=None)) + "\n")
    assert main([str(tmp_path / "emulator.json"), "--config", str(tmp_path / "offline.ini")]) == 2
    assert capsys.readouterr().err == "error: the emulator's JSON has no https_proxy: start it with --proxy\n"
    (tmp_path / "emulator.json").write_text("not json\n")
    assert main([str(tmp_path / "emulator.json"), "--config", str(tmp_path / "offline.ini")]) == 2
    assert "is not the emulator's JSON line" in capsys.readouterr().err
    assert not (tmp_path / "offline.ini").exists()


def test_a_config_without_the_azure_keys_is_refused(tmp_path):
    (tmp_path / "old.ini").write_text("[quickstart]\ntarget = local\n")
    with pytest.raises(ValueError, match=r"has no \[azure\] client_id"):
        write_config(DESCRIBED, tmp_path / "old.ini")
