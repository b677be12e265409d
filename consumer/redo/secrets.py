"""The bearer token for each store, read from the environment or from files that can be rotated.

The secret is held as ``SecretStr`` and only ever handed out by ``secret_for``; no repr, log line,
exception or metric made here contains it. Errors name the setting and the file, never the value,
and never echo file content (a YAML error's snippet could be a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import SecretStr

from consumer.config import Settings
from consumer.errors import ConfigError
from consumer.ops.logs import register_secret

_GLOBAL_SETTING = "REDO_API_SECRET"
_GLOBAL_FILE_SETTING = "REDO_API_SECRET_FILE"
_STORE_FILE_SETTING = "REDO_STORE_SECRETS_FILE"

# Names of the secrets, never their values: what a 401/403 is attributed to (one auth breaker and
# one metric label each). A store with its own secret is "store:<storeId>", which no store can
# turn into "default".
DEFAULT_SECRET = "default"


class SecretProvider:
    """Gives the secret for a store: its own from the per-store file, else the global one.

    The global secret comes from ``REDO_API_SECRET_FILE`` when set (only a file can follow a
    rotation), else from ``REDO_API_SECRET``. ``reload()`` re-reads the files; the dispatcher calls
    it after a 401/403 so a rotated secret is picked up without a restart.
    """

    def __init__(
        self,
        *,
        secret: SecretStr | None = None,
        secret_file: Path | None = None,
        store_secrets_file: Path | None = None,
    ) -> None:
        if secret is None and secret_file is None:
            raise ConfigError(_GLOBAL_SETTING, f"set {_GLOBAL_SETTING} or {_GLOBAL_FILE_SETTING}")
        self._secret = secret
        self._secret_file = secret_file
        self._store_secrets_file = store_secrets_file
        self._global, self._stores = self._load()
        self._mask()

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretProvider:
        return cls(
            secret=settings.redo_api_secret,
            secret_file=settings.redo_api_secret_file,
            store_secrets_file=settings.redo_store_secrets_file,
        )

    def secret_for(self, store_id: str) -> str:
        return self._stores.get(store_id, self._global).get_secret_value()

    def secret_name(self, store_id: str) -> str:
        """Which secret ``secret_for(store_id)`` hands out, by name."""
        return f"store:{store_id}" if store_id in self._stores else DEFAULT_SECRET

    def all_secrets(self) -> list[str]:
        """Every secret currently held (global and per store), so logging can mask them."""
        return sorted(
            {secret.get_secret_value() for secret in (self._global, *self._stores.values())}
        )

    def reload(self) -> None:
        """Re-read the secret files; on any error raise ``ConfigError`` and keep the old secrets."""
        self._global, self._stores = self._load()
        self._mask()

    def _mask(self) -> None:
        """Every secret held is masked in every log line from now on."""
        for secret in self.all_secrets():
            register_secret(secret)

    def __repr__(self) -> str:
        source = (
            f"{_GLOBAL_FILE_SETTING}={self._secret_file}" if self._secret_file else _GLOBAL_SETTING
        )
        return f"SecretProvider(global={source}, per_store={len(self._stores)})"

    def _load(self) -> tuple[SecretStr, Mapping[str, SecretStr]]:
        if self._secret_file is not None:
            global_secret = _checked(
                _read(self._secret_file, _GLOBAL_FILE_SETTING), _GLOBAL_FILE_SETTING
            )
        else:
            assert self._secret is not None  # guaranteed by __init__
            global_secret = _checked(self._secret.get_secret_value(), _GLOBAL_SETTING)
        stores = (
            _read_store_secrets(self._store_secrets_file)
            if self._store_secrets_file is not None
            else {}
        )
        return global_secret, stores


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(setting, f"cannot read {path}: {reason}") from None


def _checked(raw: str, where: str) -> SecretStr:
    """Strip the secret and refuse one that cannot go into an ``Authorization`` header.

    Checked here because an HTTP library that rejects a header value quotes it in its error.
    """
    value = raw.strip()
    if not value:
        raise ConfigError(where, "the secret is empty")
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        raise ConfigError(where, "the secret must be printable ASCII without whitespace")
    return SecretStr(value)


def _read_store_secrets(path: Path) -> dict[str, SecretStr]:
    try:
        data = yaml.safe_load(_read(path, _STORE_FILE_SETTING))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(_STORE_FILE_SETTING, f"{path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(_STORE_FILE_SETTING, f"{path} must be a mapping of storeId to secret")
    stores: dict[str, SecretStr] = {}
    for store_id, secret in data.items():
        if not isinstance(store_id, str):
            raise ConfigError(
                _STORE_FILE_SETTING, f"store ID {store_id!r} in {path} is not a string (quote it)"
            )
        if not isinstance(secret, str):
            raise ConfigError(
                _STORE_FILE_SETTING, f"the secret for store {store_id!r} in {path} is not a string"
            )
        stores[store_id] = _checked(secret, f"{_STORE_FILE_SETTING} (store {store_id!r})")
    return stores
