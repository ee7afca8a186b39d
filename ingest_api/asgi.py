"""ASGI entry point for multi-worker uvicorn: ``uvicorn ingest_api.asgi:app`` (settings from env)."""

from ingest_api.app import create_app
from scout.settings import Settings

app = create_app(Settings())
