"""Start and stop Scout's own processes (api, worker, scheduler) as children with their own logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Children:
    env: dict[str, str]
    log_dir: Path
    running: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, proc, log)
        self.running.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.running if c.proc.poll() is not None]

    def stop_all(self, timeout: float = 30) -> None:
        for child in reversed(self.running):
            if child.proc.poll() is None:
                os.killpg(child.proc.pid, signal.SIGTERM)
        for child in reversed(self.running):
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait(10)


def child_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOUT_")}
    env.update({f"SCOUT_{k.upper()}": v for k, v in values.items()})
    return env
