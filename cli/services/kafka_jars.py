"""Fetch Apache Kafka's jars into the project cache: ``python -m cli.services.kafka_jars`` (the version
``SCOUT_TEST_KAFKA_VERSION`` names, else 3.9)."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.services.kafka import ensure_jars, kafka_version

if __name__ == "__main__":
    folder = ensure_jars(Path(".cache").absolute())
    sys.stdout.write(f"Apache Kafka {kafka_version()} jars ready in {folder.relative_to(Path.cwd())}\n")
