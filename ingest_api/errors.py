"""The one error shape of the API, and the handlers that produce it.

    {"error": {"code": "validation_error", "message": "...",
               "details": [{"field": "items.0.qty", "reason": "Input should be a valid integer"}]}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, details: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers


def database_unavailable(reason: object = None) -> ApiError:
    """The one 503 for a database the API cannot use: none configured (``reason`` None) or unreachable."""
    if reason is None:
        return ApiError(503, "database_unavailable", "the API has no database configured (SCOUT_DATABASE_URL)")
    return ApiError(503, "database_unavailable", f"the database is unavailable: {reason}; retry later")


def error_response(status: int, code: str, message: str, details: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_details(errors: list[Any], *, drop_prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    details = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if drop_prefix and tuple(loc[: len(drop_prefix)]) == drop_prefix:
            loc = loc[len(drop_prefix):]
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": ".".join(loc) or "(body)", "reason": reason})
    return details


def invalid(exc: ValidationError, *, prefix: str = "") -> ApiError:
    details = validation_details(exc.errors(include_url=False, include_input=False))
    if prefix:
        for d in details:
            d["field"] = prefix if d["field"] == "(body)" else f"{prefix}.{d['field']}"
    first = details[0]
    return ApiError(422, "validation_error", f"{first['field']}: {first['reason']}", details=details)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()), drop_prefix=("body",))
        first = details[0] if details else {"field": "(request)", "reason": "invalid"}
        return error_response(422, "validation_error", f"{first['field']}: {first['reason']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI cannot even decode: an invalid request like any other
            reason = str(exc.detail)
            return error_response(422, "validation_error", f"(body): {reason}", [{"field": "(body)", "reason": reason}])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))
