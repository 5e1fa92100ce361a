import pytest
from pydantic_settings import SettingsConfigDict

from switchboard.common.config import ServiceSettings


class ParserSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SB_PARSER_", env_nested_delimiter="__")

    rate_limit_per_minute: int = 30


def test_nested_kafka_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_PARSER_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    monkeypatch.setenv("SB_PARSER_KAFKA__SASL_PASSWORD", "s3cret-of-16-bytes-or-more")
    monkeypatch.setenv("SB_PARSER_RATE_LIMIT_PER_MINUTE", "5")
    settings = ParserSettings()
    assert settings.kafka.bootstrap_servers == "10.0.0.1:9092"
    assert settings.rate_limit_per_minute == 5
    # Secrets never show up in reprs (and so never in logs).
    assert "s3cret-of-16-bytes-or-more" not in repr(settings) and "s3cret-of-16-bytes-or-more" not in str(
        settings.model_dump()
    )
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "s3cret-of-16-bytes-or-more"


def test_bad_values_fail_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_PARSER_HEALTH_PORT", "not-a-port")
    with pytest.raises(ValueError, match="health_port"):
        ParserSettings()
