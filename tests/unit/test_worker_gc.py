"""The collector settings of the long-running processes: what is alive at start is frozen, young objects are
collected less often; the stream worker and every API worker process tune it."""

from __future__ import annotations

import gc
import subprocess
import sys

from scout.gc_tuning import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_the_start_heap_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_an_api_worker_process_tunes_its_collector_once_the_app_is_built() -> None:
    """What uvicorn's worker processes import (``ingest_api.asgi``) leaves the collector tuned."""
    probe = "import gc, ingest_api.asgi; print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "SCOUT_AUTH_REQUIRED": "true"}).stdout.split("\n")[-2]
    assert out == f"{GC_THRESHOLDS} True"


def test_the_stream_worker_uses_the_same_tuning() -> None:
    from streams import app

    assert app.tune_gc is tune_gc
