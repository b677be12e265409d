"""Where the bearer secret comes from, how it is rotated, and that it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from consumer.config import load_settings
from consumer.errors import ConfigError
from consumer.redo.secrets import SecretProvider

SECRET = "s3cr3t-global-7f1c"
STORE_SECRET = "s3cr3t-store-a-91ab"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_global_secret_from_the_environment_value() -> None:
    provider = SecretProvider(secret=SecretStr(SECRET))
    assert provider.secret_for("any-store") == SECRET


def test_global_secret_file_is_stripped(tmp_path: Path) -> None:
    provider = SecretProvider(secret_file=write(tmp_path / "secret", f"  {SECRET}\n"))
    assert provider.secret_for("any-store") == SECRET


def test_the_file_wins_over_the_value_because_only_it_can_rotate(tmp_path: Path) -> None:
    provider = SecretProvider(
        secret=SecretStr("from-env"), secret_file=write(tmp_path / "secret", SECRET)
    )
    assert provider.secret_for("any-store") == SECRET


def test_store_with_its_own_secret_uses_it_others_use_the_global_one(tmp_path: Path) -> None:
    stores = write(tmp_path / "stores.yaml", f'store-a: "{STORE_SECRET}"\n')
    provider = SecretProvider(secret=SecretStr(SECRET), store_secrets_file=stores)
    assert provider.secret_for("store-a") == STORE_SECRET
    assert provider.secret_for("store-b") == SECRET


def test_reload_reads_rotated_files(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secret", SECRET)
    stores = write(tmp_path / "stores.yaml", f"store-a: {STORE_SECRET}\n")
    provider = SecretProvider(secret_file=secret_file, store_secrets_file=stores)
    write(secret_file, "rotated-global")
    write(stores, "store-a: rotated-store-a\nstore-c: new-store-c\n")
    assert provider.secret_for("store-a") == STORE_SECRET  # nothing re-read yet
    provider.reload()
    assert provider.secret_for("any-store") == "rotated-global"
    assert provider.secret_for("store-a") == "rotated-store-a"
    assert provider.secret_for("store-c") == "new-store-c"


def test_failed_reload_keeps_the_previous_secrets(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secret", SECRET)
    provider = SecretProvider(secret_file=secret_file)
    secret_file.unlink()
    with pytest.raises(ConfigError, match="REDO_API_SECRET_FILE: cannot read"):
        provider.reload()
    assert provider.secret_for("any-store") == SECRET


def test_empty_store_secrets_file_means_no_store_has_its_own(tmp_path: Path) -> None:
    provider = SecretProvider(
        secret=SecretStr(SECRET), store_secrets_file=write(tmp_path / "stores.yaml", "")
    )
    assert provider.secret_for("store-a") == SECRET


def test_from_settings(tmp_path: Path) -> None:
    stores = write(tmp_path / "stores.yaml", f"store-a: {STORE_SECRET}\n")
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
            "KAFKA_TOPIC": "tracking",
            "KAFKA_GROUP_ID": "group",
            "REDO_API_SECRET_FILE": str(write(tmp_path / "secret", SECRET)),
            "REDO_STORE_SECRETS_FILE": str(stores),
        }
    )
    provider = SecretProvider.from_settings(settings)
    assert provider.secret_for("store-a") == STORE_SECRET
    assert provider.secret_for("store-b") == SECRET


def test_all_secrets_lists_each_one_once_for_log_masking(tmp_path: Path) -> None:
    stores = write(tmp_path / "stores.yaml", f"store-a: {STORE_SECRET}\nstore-b: {SECRET}\n")
    provider = SecretProvider(secret=SecretStr(SECRET), store_secrets_file=stores)
    assert sorted(provider.all_secrets()) == sorted([SECRET, STORE_SECRET])


def test_repr_names_sources_not_secrets(tmp_path: Path) -> None:
    stores = write(tmp_path / "stores.yaml", f"store-a: {STORE_SECRET}\n")
    provider = SecretProvider(secret=SecretStr(SECRET), store_secrets_file=stores)
    text = repr(provider) + str(provider) + repr(vars(provider))
    assert SECRET not in text
    assert STORE_SECRET not in text
    assert "per_store=1" in repr(provider)


def test_no_secret_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="REDO_API_SECRET"):
        SecretProvider()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("   \n", "empty"),
        (f"{SECRET} trailing-part", "printable ASCII without whitespace"),
        (f"{SECRET}\x07", "printable ASCII without whitespace"),
        (f"{SECRET}é", "printable ASCII without whitespace"),
    ],
)
def test_unusable_secret_is_refused_without_showing_it(
    tmp_path: Path, content: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        SecretProvider(secret_file=write(tmp_path / "secret", content))
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"store-a: [{STORE_SECRET}\n", "not valid YAML at line"),
        (f"- {STORE_SECRET}\n", "must be a mapping"),
        (f"12345: {STORE_SECRET}\n", "store ID 12345 .* is not a string"),
        ("store-a: 12345\n", "secret for store 'store-a' .* is not a string"),
        ("store-a: ''\n", "empty"),
    ],
)
def test_bad_store_secrets_file_is_a_config_error_without_its_content(
    tmp_path: Path, content: str, problem: str
) -> None:
    stores = write(tmp_path / "stores.yaml", content)
    with pytest.raises(ConfigError, match=problem) as caught:
        SecretProvider(secret=SecretStr(SECRET), store_secrets_file=stores)
    assert caught.value.setting.startswith("REDO_STORE_SECRETS_FILE")
    assert STORE_SECRET not in str(caught.value)
