"""The on-call status page: GET /status (a page with no data of its own), its script and style, the runbook
it links to (GET /status/runbook), and its figures, GET /v1/status (read scope, like every /v1 read)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markdown_it import MarkdownIt

from ingest_api.analytics import to_json
from ingest_api.auth import require_scope
from ingest_api.deps import PoolDep, SettingsDep
from ingest_api.errors import ApiError
from ingest_api.openapi import error_responses
from ingest_api.status import EndOffsets, snapshot
from scout.settings import Settings

router = APIRouter(tags=["status"])
STATIC = resources.files("ingest_api") / "static"
ASSETS = {"status.js": "text/javascript; charset=utf-8", "status.css": "text/css; charset=utf-8"}
# The page and the runbook load nothing from elsewhere; the script talks to this API only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@router.get("/status", response_class=HTMLResponse, summary="The on-call status page (figures from /v1/status)")
async def status_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "status.html").read_text(encoding="utf-8"), headers=_HEADERS)


@router.get("/status/assets/{name}", include_in_schema=False)
async def status_asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no status page asset named {name!r}")
    return Response((STATIC / name).read_text(encoding="utf-8"), media_type=ASSETS[name], headers=_HEADERS)


@router.get("/status/runbook", response_class=HTMLResponse, summary="docs/RUNBOOK.md as a page (the alerts link here)")
async def runbook() -> HTMLResponse:
    return HTMLResponse(_runbook_html(), headers=_HEADERS)


@router.get("/v1/status", summary="The status page's figures: one snapshot of the monitor views",
            dependencies=[Depends(require_scope("read"))], responses=error_responses(401, 403, 429, 503))
async def status_figures(request: Request, pool: PoolDep, settings: SettingsDep) -> Response:
    body = await snapshot(pool, settings, request.app.state.end_offsets)
    return Response(to_json(body), media_type="application/json", headers={"Cache-Control": "no-store"})


def _runbook_source() -> str:
    """The runbook shipped in the wheel, or the repository's when running from a checkout."""
    shipped = STATIC / "RUNBOOK.md"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise ApiError(404, "not_found", "this installation has no docs/RUNBOOK.md; read it in Scout's repository")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@cache
def _runbook_html() -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(_runbook_source())
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open":
            opening.attrSet("id", _slug(inline.content))
    body = md.renderer.render(tokens, md.options, {})
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Scout runbook</title>'
            '<link rel="icon" href="data:,"><link rel="stylesheet" href="/status/assets/status.css"></head>'
            f'<body class="runbook"><p><a href="/status">&larr; status page</a></p>{body}</body></html>')


def install(app: Any, settings: Settings) -> None:
    """Add the routes and the broker reader (it connects on first use; ``close`` closes it with the app)."""
    app.state.end_offsets = EndOffsets(settings)
    app.include_router(router)


async def close(app: Any) -> None:
    await app.state.end_offsets.close()
