"""Validate helper responses against the OpenAPI document the helper itself serves."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS30Validator


def validate_response(spec: dict[str, Any], path: str, status: int, body: Any, method: str = "get") -> None:
    """Raise if *body* is not what the spec promises for *method* *path* answering *status*."""
    operation = spec["paths"][path][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    # Carry the components along so that `#/components/...` references resolve.
    OAS30Validator({**schema, "components": spec["components"]}).validate(body)
