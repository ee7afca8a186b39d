"""Data sets the tests read, all inside the repository (tests/data).

Example:
    from tests.samples import RETAIL_SAMPLE
    Replay.load(RETAIL_SAMPLE)
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
RETAIL_SAMPLE = DATA / "online_retail_ii_sample" / "online_retail_II_sample.csv.gz"
