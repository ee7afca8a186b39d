"""The hot path of ``POST /v1/transactions`` as ASGI middleware: the route's own steps without the framework's
per-request work (routing over every route, dependency solving, the endpoint wrappers).

Example::

    app.add_middleware(SinglePostFastPath)    # innermost of the app's middleware, inside CORS and metrics

It answers only a plain single POST (exactly ``/v1/transactions``, no ``Idempotency-Key``) and does what the
FastAPI route does, in the same order: the bearer token through the same ``HTTPBearer`` and ``Authenticator``,
the body with the same size limits, ``Ingest.read`` and ``Ingest.one``, the answer ``answer_once`` gives without
a key (sent by ``send_reply`` as ASGI messages, no Response object), an ``ApiError`` as the one error shape.
Everything else (and a request with an Idempotency-Key, whose header FastAPI validates) goes to the app: the
route stays in the OpenAPI document and answers exactly the same.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest_api.auth import Authenticator, bearer
from ingest_api.errors import ApiError, error_response
from ingest_api.idempotency import send_reply
from ingest_api.routes import transactions
from ingest_api.routes.transactions import read_single
from ingest_api.service import Ingest

PATH = "/v1/transactions"


class SinglePostFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path")
                or any(name == b"idempotency-key" for name, _ in scope["headers"])):
            await self.app(scope, receive, send)
            return
        app: Any = scope["app"]
        scope["route"] = self._route or self._find_route(app)  # the route label of the HTTP metrics
        request = Request(scope, receive)
        try:
            authenticator: Authenticator = app.state.authenticator
            principal = await authenticator.authenticate(request, await bearer(request), "ingest")
            ingest: Ingest = app.state.ingest
            tx = ingest.read(await read_single(request))
            reply = await ingest.one(principal, tx)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
            await response(scope, receive, send)
            return
        await send_reply(send, reply)

    def _find_route(self, app: Any) -> APIRoute:
        for route in transactions.router.routes:
            if isinstance(route, APIRoute) and route.path == PATH and "POST" in (route.methods or ()):
                self._route = route
                return route
        raise RuntimeError(f"the app has no POST {PATH} route")
