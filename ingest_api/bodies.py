"""Strict reading of transaction bodies at the door: the contract's model plus the JSON spellings it documents.

Example::

    tx = read_transaction(body)      # a Transaction, or ApiError 422 with every field path and reason
    array_members(b'[{...}, {...}]')  # [b'{...}', b'{...}']: each member's own JSON, read alone

The body is parsed once by jiter (the parser inside pydantic, about 1.5 µs for a 300-byte transaction) to
check what the model alone does not see (a key given twice, spellings outside the contract), then
validated by the model from the raw JSON, so numbers are read exactly and the error messages are the
model's own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

import jiter
import orjson
from pydantic import ValidationError

from ingest_api.errors import ApiError, invalid
from scout.contract import Transaction, spelling_errors

_SPACE: Final = frozenset(" \t\n\r")  # JSON's whitespace
_SCANNER: Final = json.JSONDecoder()


def refused(details: list[dict[str, str]]) -> ApiError:
    first = details[0]
    return ApiError(422, "validation_error", f"{first['field']}: {first['reason']}", details=details)


class _Object(dict[str, Any]):
    """A JSON object as the standard library read it, with the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    if len(found) != len(pairs):
        found.duplicates = tuple(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
    return found


def _duplicate_paths(node: Any, path: str = "") -> Iterator[str]:
    prefix = f"{path}." if path else ""
    if isinstance(node, _Object):
        yield from (prefix + key for key in node.duplicates)
        for key, value in node.items():
            yield from _duplicate_paths(value, prefix + key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _duplicate_paths(value, f"{prefix}{index}")


def _duplicates(raw: bytes, found: str) -> ApiError:
    """422 naming every key given twice. Only on this rare path is the body read again (by the standard
    library, which keeps every pair) to find where they are; ``found`` is jiter's message, the fallback."""
    try:
        paths = list(_duplicate_paths(json.loads(raw.decode("utf-8", "surrogateescape"), object_pairs_hook=_object)))
    except (ValueError, RecursionError):
        paths = []
    if not paths:
        key = found.split('"')[1] if found.count('"') >= 2 else "(body)"
        paths = [key]
    return refused([{"field": path, "reason": f'duplicate key "{path.rsplit(".", 1)[-1]}": the body is ambiguous; '
                                              "send each key once"} for path in paths])


def _document(raw: bytes) -> Any:
    """The parsed JSON, or None when it is not valid JSON (the model then says why, in its own words).
    A key given twice in one object is refused: which value was meant is a guess (most parsers keep the last)."""
    try:
        return jiter.from_json(raw, catch_duplicate_keys=True)
    except ValueError as exc:
        if str(exc).startswith("Detected duplicate key"):
            raise _duplicates(raw, str(exc)) from None
        return None


def read_transaction(raw: bytes) -> Transaction:
    """One transaction from its JSON text; ApiError 422 naming each refused field (or duplicated key)."""
    errors = spelling_errors(_document(raw))
    if errors:
        raise refused(errors)
    try:
        return Transaction.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc) from None


def _unreadable(reason: str) -> ApiError:
    return ApiError(422, "validation_error", f"(body): {reason}", details=[{"field": "(body)", "reason": reason}])


def _skip(text: str, pos: int) -> int:
    """The position after any JSON whitespace at ``pos``."""
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def array_members(body: bytes) -> list[bytes]:
    """The raw JSON of each member of a JSON array, so that each is read alone, as NDJSON lines are.

    A member that is valid JSON text but not a valid transaction (a lone surrogate such as "\\ud800", a
    duplicate key, a bad field) is refused alone. Only an array whose structure cannot be followed (a
    member that is not JSON at all, a missing comma) is refused whole. The standard library's scanner finds
    where each member ends; it accepts lone surrogates, and bytes that are not UTF-8 travel through it as
    they are (surrogateescape) for the member's own reading to refuse.
    """
    text = body.decode("utf-8", "surrogateescape")
    pos = _skip(text, 0)
    if text[pos:pos + 1] != "[":
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _unreadable(f"invalid JSON: {exc}") from None
        raise _unreadable("expected a JSON array of transactions")
    members: list[bytes] = []
    pos = _skip(text, pos + 1)
    closed = text[pos:pos + 1] == "]"
    if closed:
        pos = _skip(text, pos + 1)
    while not closed:
        try:
            _, end = _SCANNER.raw_decode(text, pos)
        except ValueError as exc:
            raise _unreadable(f"invalid JSON: {exc}") from None
        except RecursionError:
            raise _unreadable("invalid JSON: nested too deeply") from None
        members.append(text[pos:end].encode("utf-8", "surrogateescape"))
        pos = _skip(text, end)
        separator = text[pos:pos + 1]
        if separator not in (",", "]"):
            raise _unreadable(f"invalid JSON: expected ',' or ']' at char {pos} (member {len(members) - 1})")
        closed = separator == "]"
        pos = _skip(text, pos + 1)
    if pos != len(text):
        raise _unreadable(f"invalid JSON: unexpected data after the array at char {pos}")
    return members
