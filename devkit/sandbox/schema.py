"""Redo's published JSON Schemas (copied from the API page) and validators compiled once.

``openapi-schemas.json`` holds the OpenAPI document's ``components.schemas`` unchanged. Each
``#/components/schemas/<name>`` reference is inlined before compiling: the schemas have no cycles,
and resolving references on every request costs the sandbox about a third of its validation
time. Formats are asserted (a bad ``date-time`` fails), which JSON Schema 2020-12 leaves optional.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any, Protocol

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

REQUEST = "orders-api-update-fulfillment-status-request.schema"
FULFILLMENT_RESPONSE = "orders-api-fulfillment-response.schema"
ERROR = "orders-api-error.schema"
PROBLEM = "error.schema"


class ValidationError(Protocol):
    message: str
    json_path: str


class Validator(Protocol):
    def iter_errors(self, instance: object) -> Iterator[ValidationError]: ...

    def is_valid(self, instance: object) -> bool: ...


_REF_PREFIX = "#/components/schemas/"


@cache
def _schemas() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi-schemas.json").read_text("utf-8")
    schemas: dict[str, Any] = json.loads(text)["components"]["schemas"]
    return schemas


def schema(name: str) -> dict[str, Any]:
    """The named schema with every reference to another component inlined."""
    inlined: dict[str, Any] = _inline(_schemas()[name])
    return inlined


def _inline(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            return _inline(_schemas()[ref.removeprefix(_REF_PREFIX)])
        return {key: _inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item) for item in node]
    return node


@cache
def validator(name: str) -> Validator:
    """A format-checking Draft 2020-12 validator for one named schema of the document."""
    compiled_schema = schema(name)
    Draft202012Validator.check_schema(compiled_schema)
    compiled: Validator = Draft202012Validator(
        compiled_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return compiled


def first_error(name: str, instance: object) -> str | None:
    """The most relevant violation of schema ``name`` as ``<json path>: <message>``, or None."""
    error: ValidationError | None = best_match(validator(name).iter_errors(instance))
    return None if error is None else f"{error.json_path}: {error.message}"
