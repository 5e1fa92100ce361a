"""The gateway refuses to start on secrets that protect nothing, with one line saying which."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from switchboard.channel_gateway.config import Settings
from switchboard.common.lifecycle import EXIT_CONFIG

GOOD = {"SB_GATEWAY_DATABASE_URL": "postgresql://gw@127.0.0.1:1/db", "SB_GATEWAY_JWT_SECRET": "x" * 32}


def _settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    for name in [n for n in os.environ if n.startswith("SB_GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in {**GOOD, **values}.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize(
    "name",
    [
        "SB_GATEWAY_JWT_SECRET",
        "SB_GATEWAY_ID_SECRET",
        "SB_GATEWAY_TELEGRAM_WEBHOOK_SECRET",
        "SB_GATEWAY_FEISHU_VERIFICATION_TOKEN",
        "SB_GATEWAY_FEISHU_ENCRYPT_KEY",
        "SB_GATEWAY_MQTT_PASSWORD",
        "SB_GATEWAY_KAFKA__SASL_PASSWORD",
    ],
)
@pytest.mark.parametrize("value", ["", "fifteen-bytes!!"])
def test_empty_and_short_secrets_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(ValidationError, match="shorter than 16 bytes"):
        _settings(monkeypatch, **{name: value})


def test_a_secret_of_16_bytes_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, SB_GATEWAY_ID_SECRET="sixteen-bytes!!!")
    assert settings.id_secret is not None and settings.id_secret.get_secret_value() == "sixteen-bytes!!!"


def test_feishu_webhook_mode_needs_the_encrypt_key(monkeypatch: pytest.MonkeyPatch) -> None:
    feishu = {
        "SB_GATEWAY_FEISHU_MODE": "webhook",
        "SB_GATEWAY_FEISHU_APP_ID": "cli_1",
        "SB_GATEWAY_FEISHU_APP_SECRET": "s" * 32,
        "SB_GATEWAY_FEISHU_VERIFICATION_TOKEN": "t" * 32,
    }
    with pytest.raises(ValidationError, match="SB_GATEWAY_FEISHU_ENCRYPT_KEY"):
        _settings(monkeypatch, **feishu)
    assert _settings(monkeypatch, **feishu, SB_GATEWAY_FEISHU_ENCRYPT_KEY="k" * 32).feishu_mode == "webhook"


def test_the_service_refuses_to_start_with_one_line_naming_the_setting_and_never_its_value() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    env |= {**GOOD, "SB_GATEWAY_JWT_SECRET": "", "SB_GATEWAY_ID_SECRET": "short-id-secret"}
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.channel_gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == EXIT_CONFIG
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("channel-gateway: configuration refused: ")
    assert "SB_GATEWAY_JWT_SECRET is empty or shorter than 16 bytes" in lines[0]
    assert "SB_GATEWAY_ID_SECRET is empty" in lines[0]
    assert "short-id-secret" not in done.stderr + done.stdout
