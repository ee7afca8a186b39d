"""Fetch Apache Kafka's jars into the project cache: ``python -m cli.services.kafka_jars``."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.services.kafka import KAFKA_VERSION, ensure_jars

if __name__ == "__main__":
    folder = ensure_jars(Path(".cache").absolute())
    sys.stdout.write(f"Apache Kafka {KAFKA_VERSION} jars ready in {folder.relative_to(Path.cwd())}\n")
