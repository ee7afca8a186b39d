"""ASGI entry point for multi-worker uvicorn: ``uvicorn ingest_api.asgi:app`` (settings from env).

Importing it builds the app and tunes the collector of the worker process (``scout.gc_tuning``)."""

from ingest_api.app import create_app
from scout.gc_tuning import tune_gc
from scout.settings import Settings

app = create_app(Settings())
tune_gc()
