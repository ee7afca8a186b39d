"""Apache Kafka 3.9 (KRaft) from its Maven Central jars, run with the machine's Java 17: one broker, or a
cluster of three on loopback. ``SCOUT_TEST_KAFKA_VERSION=4.4.0`` runs another version (any of Maven Central's).

The jars are fetched once by Maven into ``.cache/kafka/<version>/libs`` (ignored by git); each broker is
formatted into a fresh directory and listens on 127.0.0.1 only. In a cluster every node is broker and
controller (a three-voter KRaft quorum), and Kafka's own topics have three copies.

Example::

    broker = ApacheKafka(Path(".cache/kafka-run"))
    bootstrap = broker.start()     # "127.0.0.1:PORT"
    ...; broker.stop()

    cluster = KafkaCluster(Path(".cache/kafka-cluster"))
    bootstrap = cluster.start()    # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
    cluster.node(2).kill(); cluster.node(2).start(keep_data=True); cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kafka import KafkaAdminClient

from cli.services import free_port, port_open, stop_group, wait_until

KAFKA_VERSION = "3.9.1"  # what the tests run on unless SCOUT_TEST_KAFKA_VERSION names another (4.4.0 passes too)


def kafka_version() -> str:
    """The Apache Kafka version to run: ``SCOUT_TEST_KAFKA_VERSION``, else KAFKA_VERSION."""
    return os.environ.get("SCOUT_TEST_KAFKA_VERSION") or KAFKA_VERSION


def jars_dir(cache: Path, version: str | None = None) -> Path:
    return cache / "kafka" / (version or kafka_version()) / "libs"


def ensure_jars(cache: Path, version: str | None = None) -> Path:
    """Fetch the broker's jars with Maven unless they are cached; returns the folder."""
    version = version or kafka_version()
    target = jars_dir(cache, version)
    marker = target / ".complete"
    if marker.exists():
        return target
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch Kafka's jars: install it (apt-get install maven)")
    if shutil.which("java") is None:
        raise RuntimeError("Java 17 is needed to run Kafka: install it (apt-get install openjdk-17-jre-headless)")
    target.mkdir(parents=True, exist_ok=True)
    pom = target.parent / "pom.xml"
    pom.write_text(resources.files("cli.services").joinpath("kafka_pom.xml").read_text())
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-Dkafka.version={version}",
         f"-DoutputDirectory={target}", "-DincludeScope=runtime"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        output = result.stdout[-2000:] + result.stderr[-2000:]
        raise RuntimeError(f"Maven could not fetch Kafka {version}: {output}")
    marker.write_text(version)
    return target


_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor={copies}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor={copies}
transaction.state.log.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
"""

_LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
"""


@dataclass
class ApacheKafka:
    work_dir: Path
    cache_dir: Path = Path(".cache")
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "512m"
    node_id: int = 1
    voters: str = ""  # the KRaft quorum, "1@127.0.0.1:PORT,2@..."; empty: this broker alone
    cluster_id: str = ""  # shared by a cluster's nodes; empty: a new one
    copies: int = 1  # replication of Kafka's own topics (consumer offsets, transactions)
    version: str = field(default_factory=kafka_version)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        log4j, log4j2 = self.work_dir / "log4j.properties", self.work_dir / "log4j2.properties"
        return [  # Kafka 3 logs through log4j 1 (reload4j), Kafka 4 through log4j 2
            "java", f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", f"-Dlog4j2.configurationFile={log4j2}", "-cp", f"{libs}/*",
            main, *args,
        ]

    def start(self, timeout: float = 90, *, keep_data: bool = False) -> str:
        """Format a fresh broker and start it; ``keep_data=True`` restarts a stopped one with its topics."""
        self.launch(keep_data=keep_data)
        self.wait_ready(timeout)
        return self.bootstrap

    def launch(self, *, keep_data: bool = False) -> None:
        """Format (unless ``keep_data`` finds a formatted one) and start the JVM without waiting for it."""
        libs = ensure_jars(self.cache_dir.absolute(), self.version)
        self.work_dir = self.work_dir.absolute()
        data = self.work_dir / "data"
        props = self.work_dir / "server.properties"
        if not (keep_data and (data / "meta.properties").exists()):
            if data.exists():
                shutil.rmtree(data)
            data.mkdir(parents=True)
            voters = self.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}"
            props.write_text(_PROPERTIES.format(
                port=self.port, controller_port=self.controller_port, log_dir=data, node_id=self.node_id,
                voters=voters, copies=self.copies, min_isr=min(2, self.copies)))
            (self.work_dir / "log4j.properties").write_text(_LOG4J.format(log_file=self.work_dir / "kafka.log"))
            (self.work_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.work_dir / "kafka.log"))
            cluster_id = self.cluster_id or uuid.uuid4().hex[:22]
            subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                check=True, capture_output=True, timeout=120,
            )
        out = open(self.work_dir / "kafka.out", "ab")  # noqa: SIM115 - owned by the child
        self._proc = subprocess.Popen(
            self._java(libs, "kafka.Kafka", str(props)), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_ready(self, timeout: float = 90) -> None:
        wait_until(self._ready, timeout=timeout, what=f"Apache Kafka on {self.bootstrap}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"Kafka exited with {self._proc.returncode}; see {self.work_dir / 'kafka.out'}")
        return port_open("127.0.0.1", self.port)

    def stop(self, timeout: float = 30) -> None:
        stop_group(self._proc, timeout)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)


@dataclass
class KafkaCluster:
    """``size`` Apache Kafka nodes on loopback, each broker and controller of one KRaft quorum."""

    work_dir: Path
    cache_dir: Path = Path(".cache")
    size: int = 3
    heap: str = "384m"
    nodes: list[ApacheKafka] = field(default_factory=list, init=False)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> ApacheKafka:
        return next(n for n in self.nodes if n.node_id == node_id)

    def start(self, timeout: float = 180) -> str:
        """Format and start every node (they elect a controller among themselves); returns the bootstrap list."""
        controller_ports = [free_port() for _ in range(self.size)]
        voters = ",".join(f"{n + 1}@127.0.0.1:{p}" for n, p in enumerate(controller_ports))
        cluster_id = uuid.uuid4().hex[:22]
        self.nodes = [ApacheKafka(self.work_dir / f"node-{n + 1}", self.cache_dir, controller_port=port,
                                  heap=self.heap, node_id=n + 1, voters=voters, cluster_id=cluster_id,
                                  copies=min(3, self.size))
                      for n, port in enumerate(controller_ports)]
        try:
            for node in self.nodes:  # all at once: a node's broker waits for a quorum of controllers
                node.launch()
            for node in self.nodes:
                node.wait_ready(timeout)
            wait_until(lambda: self.known_brokers() == [self.size] * self.size, timeout=timeout,
                       what=f"every node to know all {self.size} brokers")
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def known_brokers(self) -> list[int]:
        """How many brokers each running node's metadata lists (a killed one drops out once fenced)."""
        return [self._brokers_known_by(node) for node in self.nodes if node.running]

    @staticmethod
    def _brokers_known_by(node: ApacheKafka) -> int:
        client = KafkaAdminClient(bootstrap_servers=[node.bootstrap], client_id="scout-cluster",
                                  request_timeout_ms=5000)
        try:
            return len(client.describe_cluster()["brokers"])
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
