"""The bundled Avro schemas (``avro/*.avsc``), found both in a wheel and in a source checkout.

A wheel carries the repository's top-level ``avro/`` folder as ``consumer/avro_schemas/`` (see
``pyproject.toml``); an editable install or a plain checkout reads ``<repo>/avro/`` directly, so the
files have a single source of truth. Schemas are parsed once and cached: parsing is far too slow for
the per-record hot path.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, cast

import fastavro

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # consumer/
_SEARCH_DIRS = (_PACKAGE_DIR / "avro_schemas", _PACKAGE_DIR.parent / "avro")


def schema_path(name: str) -> Path:
    """The ``<name>.avsc`` file: the installed copy if there is one, else the checkout's."""
    for directory in _SEARCH_DIRS:
        candidate = directory / f"{name}.avsc"
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in _SEARCH_DIRS)
    raise FileNotFoundError(f"Avro schema {name}.avsc not found in {searched}")


@cache
def load_schema_json(name: str) -> dict[str, Any]:
    """The bundled schema as written (unparsed JSON), e.g. to register it in a Schema Registry.

    Callers must not mutate the returned dict: it is cached and shared.
    """
    return _read_json_object(schema_path(name))


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The bundled schema, parsed by fastavro; cached and shared, so never mutate it."""
    return parse_schema_document(load_schema_json(name), f"{name}.avsc")


def load_schema_file(path: Path) -> dict[str, Any]:
    """Parse an arbitrary ``.avsc`` file (e.g. a configured writer schema).

    Raises ``OSError`` if it cannot be read and ``ValueError`` if it is not a valid Avro schema.
    """
    return parse_schema_document(_read_json_object(path), str(path))


def parse_schema_document(document: dict[str, Any], source: str) -> dict[str, Any]:
    """Parse a JSON schema document with fastavro; ``ValueError`` (naming ``source``) if invalid."""
    try:
        # A JSON object always parses to a dict; fastavro's annotation covers every schema kind.
        parsed = cast("dict[str, Any]", fastavro.parse_schema(document))
    # fastavro reports a malformed schema with any of these, depending on what is wrong.
    except (fastavro.schema.SchemaParseException, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{source}: not a valid Avro schema: {exc!r}") from exc
    return parsed


def _read_json_object(path: Path) -> dict[str, Any]:
    """Every schema we read is a record, so its document is a JSON object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"{path}: an Avro schema file must hold a JSON object")
    return document


TRACKING_EVENT = "tracking_event"


def tracking_event_schema() -> dict[str, Any]:
    """The bundled ``TrackingEvent`` schema (parsed, cached): the reader schema of every decoder."""
    return load_schema(TRACKING_EVENT)
