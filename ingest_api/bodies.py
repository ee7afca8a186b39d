"""Strict reading of transaction bodies at the door: the contract's model plus the JSON spellings it documents.

Example::

    tx = read_transaction(body)      # a Transaction, or ApiError 422 with every field path and reason

The body is parsed once by jiter (the parser inside pydantic, about 1.5 µs for a 300-byte transaction) to
check what the model alone does not see, then validated by the model from the raw JSON, so numbers are
read exactly and the error messages are the model's own.
"""

from __future__ import annotations

from typing import Any

import jiter
from pydantic import ValidationError

from ingest_api.errors import ApiError, invalid
from scout.contract import Transaction, spelling_errors


def refused(details: list[dict[str, str]]) -> ApiError:
    first = details[0]
    return ApiError(422, "validation_error", f"{first['field']}: {first['reason']}", details=details)


def _document(raw: bytes | str) -> Any:
    """The parsed JSON, or None when it is not valid JSON (the model then says why, in its own words)."""
    try:
        return jiter.from_json(raw.encode() if isinstance(raw, str) else raw)
    except ValueError:
        return None


def read_transaction(raw: bytes | str) -> Transaction:
    """One transaction from its JSON text; ApiError 422 naming each refused field."""
    errors = spelling_errors(_document(raw))
    if errors:
        raise refused(errors)
    try:
        return Transaction.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc) from None


def check_document(document: Any) -> Transaction:
    """One transaction already parsed (a member of a JSON array); the same checks as ``read_transaction``."""
    errors = spelling_errors(document)
    if errors:
        raise refused(errors)
    try:
        return Transaction.model_validate(document)
    except ValidationError as exc:
        raise invalid(exc) from None
