"""Settings from the environment (pydantic-settings), validated once at start-up.

Every setting is an environment variable of the same name in upper case. Any other variable that
starts with ``KAFKA_`` is passed to librdkafka: ``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` becomes
``security.protocol=SASL_SSL`` (prefix dropped, lower case, ``_`` → ``.``), so a TLS/SASL cluster
works unchanged (``consumer.kafka.config.librdkafka_overrides``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumer.errors import ConfigError

DEFAULT_REDO_API_URL = "https://api.getredo.com/v2.2"

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(value: object) -> object:
    """Accept ``0``, plain seconds, or a number with a unit (``90s``, ``15m``, ``72h``, ``7d``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        unit = text[-1:] if text[-1:] in _DURATION_UNITS else "s"
        number = text[:-1] if text[-1:] in _DURATION_UNITS else text
        try:
            return timedelta(seconds=float(number) * _DURATION_UNITS[unit])
        except ValueError:
            return value  # let pydantic try ISO 8601 and report the error
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class Settings(BaseSettings):
    """The consumer's configuration. Field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(min_length=1)
    kafka_topic: str = Field(min_length=1)
    kafka_group_id: str = Field(min_length=1)

    avro_framing: Literal["raw", "confluent"] = "raw"
    avro_writer_schema_file: Path | None = None
    schema_registry_url: str | None = None

    redo_api_url: str = DEFAULT_REDO_API_URL
    redo_api_secret: SecretStr | None = None
    redo_api_secret_file: Path | None = None
    redo_store_secrets_file: Path | None = None
    redo_timeout_seconds: float = Field(default=10.0, gt=0)
    redo_rate_limit: float = Field(default=0.0, ge=0)

    rules_file: Path | None = None
    dlq_topic: str | None = None
    state_topic: str | None = None

    metrics_port: int = Field(default=9108, ge=0, le=65535)
    forward_scans: Literal["all", "changes"] = "all"
    max_scan_age: Duration = timedelta(days=7)
    max_clock_skew: Duration = timedelta(minutes=5)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    max_in_flight: int = Field(default=64, ge=1)
    max_buffered_per_partition: int = Field(default=2000, ge=1)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    not_found_retry_window_seconds: float = Field(default=600.0, ge=0)
    auth_retry_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.avro_framing == "confluent" and not self.schema_registry_url:
            raise ValueError("schema_registry_url: required when AVRO_FRAMING=confluent")
        if self.redo_api_secret is None and self.redo_api_secret_file is None:
            raise ValueError("redo_api_secret: set REDO_API_SECRET or REDO_API_SECRET_FILE")
        if self.max_scan_age < timedelta(0):
            raise ValueError("max_scan_age: must not be negative (0 turns the guard off)")
        if self.max_clock_skew < timedelta(0):
            raise ValueError("max_clock_skew: must not be negative")
        return self

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq_topic or f"{self.kafka_topic}.dlq"

    @property
    def changelog_topic(self) -> str:
        return self.state_topic or f"{self.kafka_group_id}.{self.kafka_topic}.state"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ``ConfigError`` naming the first bad setting."""
    try:
        if environ is None:
            return Settings()  # type: ignore[call-arg]  # values come from the environment
        known = {k.lower(): v for k, v in environ.items() if k.lower() in Settings.model_fields}
        return Settings.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["loc"]:
            setting = str(error["loc"][0]).upper()
            problem = error["msg"]
        else:
            setting, _, problem = str(error["msg"]).removeprefix("Value error, ").partition(": ")
            setting = setting.upper()
        if error["type"] == "missing":
            problem = "required but not set"
        raise ConfigError(setting, problem) from None
