"""What the simulator sends from: anything that gives the n-th transaction as a request body."""

from __future__ import annotations

from typing import Any, Protocol


class TransactionSource(Protocol):
    """`Generator` (synthetic, endless) and `Replay` (a real invoice file, finite) both are one."""

    def transaction(self, n: int) -> dict[str, Any]: ...
