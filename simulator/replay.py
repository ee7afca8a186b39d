"""Replay a real invoice CSV (the Online Retail II layout by default) as point-of-sale transactions.

The file is read with the bulk upload's mapping (`scout.invoice_mapping`), so a replayed invoice is the
same transaction an upload of that file makes, with the same rules (cancellations, non-product codes, ...
are left out and counted). Plain or gzip-compressed CSV.

Example::

    replay = Replay.load(Path("online_retail_II_sample.csv.gz"), shift_to=datetime.now(UTC))
    len(replay), replay.transaction(0), replay.left_out    # {"cancellation": 1206, ...}

``shift_to`` moves every timestamp by one offset so that the newest invoice is at that instant (the gaps
between invoices are kept); without it the original dates are sent.
"""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from scout.invoice_mapping import Mapping, map_csv


@dataclass
class Replay:
    transactions: list[dict[str, Any]]
    rows: int = 0
    left_out: Counter[str] = field(default_factory=Counter)

    @classmethod
    def load(cls, path: Path, *, mapping: Mapping | None = None, shift_to: datetime | None = None) -> Replay:
        """Raises ``UploadFormatError`` when the file is not the mapped CSV."""
        if shift_to is not None and shift_to.tzinfo is None:
            raise ValueError("shift_to must be timezone-aware")
        replay = cls([])
        with _open(path) as stream:
            for group in map_csv(stream, mapping or Mapping.preset("online_retail_ii")):
                replay.rows += group.rows
                replay.left_out.update(e.reason for e in (*group.errors, *group.duplicates))
                if group.transaction is not None:
                    replay.transactions.append(group.transaction.model_dump(mode="json", exclude_none=True))
        if shift_to is not None and replay.transactions:
            newest = max(datetime.fromisoformat(t["ts"]) for t in replay.transactions)
            offset = shift_to - newest
            for t in replay.transactions:
                t["ts"] = (datetime.fromisoformat(t["ts"]) + offset).isoformat()
        return replay

    def __len__(self) -> int:
        return len(self.transactions)

    def transaction(self, n: int) -> dict[str, Any]:
        """The n-th invoice of the file as a request body (a fresh copy: faults may change it)."""
        tx = self.transactions[n]
        return {**tx, "items": [dict(i) for i in tx["items"]]}


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")
