"""Restart a worker in place: the last resort when its consumer cannot be brought back from inside."""

from __future__ import annotations

import logging
import os
import sys


def restart_in_place() -> None:
    """Replace this process with a fresh run of the same command (same pid: supervisors keep tracking it).

    Offsets are committed only after rows are in PostgreSQL and landing is idempotent, so a restart
    redelivers and loses nothing."""
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
