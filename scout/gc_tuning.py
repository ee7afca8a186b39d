"""The collector settings of Scout's long-running processes (the API's workers, the stream workers).

Example::

    tune_gc()    # once the process has imported and built what it keeps: frozen, young objects collected less often

Each request or transaction allocates a few dozen short-lived objects (parsed JSON, validated models); with the
default first-generation threshold (700) the collector runs every few transactions and keeps walking the
long-lived heap (modules, the app, the catalogue). Measured: a third of the silver plan's CPU, and of the batch
endpoint's in-process CPU per transaction.
"""

from __future__ import annotations

import gc
from typing import Final

GC_THRESHOLDS: Final = (10_000, 20, 20)


def tune_gc() -> None:
    """Freeze what is alive now (modules, settings, the app: never garbage) and collect young objects less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
