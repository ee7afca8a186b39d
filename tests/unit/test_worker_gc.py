"""The worker's collector settings: what is alive at start is frozen, young objects are collected less often."""

from __future__ import annotations

import gc

from streams.app import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_the_start_heap_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
