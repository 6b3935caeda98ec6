"""Apache Kafka for the local stack: jars from Maven Central, KRaft mode, SASL/SCRAM on.

One combined broker+controller runs on the local JDK from the official jars, which Maven
resolves once into ``<cache_dir>/kafka-<version>/libs``. The client listener requires
SASL/SCRAM-SHA-512 and the controller listener SASL/PLAIN (KRaft cannot use SCRAM there,
since SCRAM credentials live in the metadata log the controller serves), so there is no
unauthenticated listener even on loopback. The standard authorizer is on, the platform
principal is a super-user, and topics are never auto-created.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from lintas.exceptions import ComponentFailed, DataDirCorrupt, PrerequisiteMissing
from lintas.settings import KAFKA_VERSION

from ._process import tail

PLATFORM_USER = "lintas"
CONTROLLER_USER = "controller"
MIN_JAVA = 17


def _run(argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def check_java() -> str:
    """The ``java`` executable, after checking it is a JDK/JRE 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise PrerequisiteMissing(
            "Java (JDK 17 or newer)",
            hint="Install it, e.g. `apt-get install -y openjdk-17-jre-headless`.",
        )
    out = _run([java, "-version"], timeout=30)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if match is None or int(match.group(1)) < MIN_JAVA:
        raise PrerequisiteMissing(
            f"Java {MIN_JAVA}+ (found: {(out.stderr or out.stdout).splitlines()[:1]})",
            hint="Kafka 4 needs Java 17 or newer: `apt-get install -y openjdk-17-jre-headless`.",
        )
    return java


def jar_dir(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    return cache_dir / f"kafka-{version}" / "libs"


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Resolve Kafka's jars with Maven into the cache once; later calls return at once."""
    libs = jar_dir(cache_dir, version)
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "Maven (mvn)",
            hint="It fetches Kafka's jars from Maven Central once: `apt-get install -y maven`.",
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs.", dir=libs.parent))
    pom = resources.files("lintas.deploy.local").joinpath("pom.xml").read_text()
    pom_path = staging / "pom.xml"
    pom_path.write_text(pom)
    out_dir = staging / "libs"
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom_path),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        result = _run(argv, timeout=900)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ComponentFailed(
            "kafka", "Maven did not finish fetching the jars in 15 minutes"
        ) from exc
    if result.returncode != 0 or not any(out_dir.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        detail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise PrerequisiteMissing(
            f"Apache Kafka {version} jars from Maven Central",
            hint="Maven could not download them: check the network or proxy "
            "(~/.m2/settings.xml) and try again. Maven said: " + " | ".join(detail),
        )
    if libs.exists():
        shutil.rmtree(libs)
    out_dir.rename(libs)
    shutil.rmtree(staging, ignore_errors=True)
    (libs / ".complete").write_text(version)
    return libs


class KafkaNode:
    """The files of one local Kafka node under ``<data_dir>/kafka``."""

    def __init__(self, data_dir: Path, *, fast_test_profile: bool = False) -> None:
        self.root = data_dir / "kafka"
        self.log_dirs = self.root / "data"
        self.config = self.root / "server.properties"
        self.log4j = self.root / "log4j2.properties"
        self.logs = data_dir / "logs" / "kafka"
        self.fast_test_profile = fast_test_profile

    @property
    def formatted(self) -> bool:
        return (self.log_dirs / "meta.properties").exists()

    def render(
        self,
        *,
        port: int,
        controller_port: int,
        controller_password: str,
        platform_password: str,
        tls_port: int | None = None,
        tls_keystore: Path | None = None,
    ) -> None:
        """Write ``server.properties`` for the given ports (kept across restarts otherwise).

        Args:
            tls_port: a second client listener, SASL_SSL, on this port.
            tls_keystore: the broker's PEM keystore (key + chain) for ``tls_port``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        fast = self.fast_test_profile
        tls = tls_port is not None and tls_keystore is not None
        client = [f"SASL_PLAINTEXT://127.0.0.1:{port}"]
        if tls:
            client.append(f"SASL_SSL://127.0.0.1:{tls_port}")
        protocols = ["SASL_PLAINTEXT:SASL_PLAINTEXT", "CONTROLLER:SASL_PLAINTEXT"]
        if tls:
            protocols.insert(1, "SASL_SSL:SASL_SSL")
        lines = [
            "# Written by `lintas up`; edits are overwritten at the next start.",
            "process.roles=broker,controller",
            "node.id=1",
            # A static voter set: the controller port may change between starts.
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={','.join(client)},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={','.join(client)}",
            f"listener.security.protocol.map={','.join(protocols)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{CONTROLLER_USER}" password="{controller_password}" '
            f'user_{CONTROLLER_USER}="{controller_password}";',
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{PLATFORM_USER}" password="{platform_password}";',
            *(self._tls_lines(tls_keystore) if tls and tls_keystore else []),
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{PLATFORM_USER};User:{CONTROLLER_USER}",
            "allow.everyone.if.no.acl.found=false",
            "auto.create.topics.enable=false",
            f"log.dirs={self.log_dirs}",
            "num.partitions=3",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            f"group.initial.rebalance.delay.ms={0 if fast else 3000}",
            f"group.min.session.timeout.ms={1000 if fast else 6000}",
            "log.retention.hours=168",
            "log.segment.bytes=134217728",
        ]
        # Inter-broker traffic authenticates as the platform principal; the password sits
        # in this file, which only its owner can read.
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)
        src = resources.files("lintas.deploy.local").joinpath("log4j2.properties").read_text()
        self.log4j.write_text(src)

    @staticmethod
    def _tls_lines(keystore: Path) -> list[str]:
        # The TLS listener authenticates with SCRAM too (TLS alone would let anyone in who
        # reaches the port). Its SCRAM login module needs no options: the credentials live
        # in the metadata log. The keystore is Kafka's PEM format with an unencrypted
        # PKCS#8 key, protected by its file mode like the passwords in this file.
        return [
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={keystore}",
            "listener.name.sasl_ssl.ssl.client.auth=none",
        ]

    def format(self, java: str, libs: Path, *, platform_password: str) -> None:
        """Format the storage once, creating the platform super-user's SCRAM credential."""
        if self.formatted:
            return
        if self.log_dirs.exists() and any(self.log_dirs.iterdir()):
            raise DataDirCorrupt(str(self.log_dirs), "it holds files but no meta.properties")
        cp = f"{libs}/*"
        cluster_id = _run([java, "-cp", cp, "kafka.tools.StorageTool", "random-uuid"], timeout=60)
        uuid = cluster_id.stdout.strip().splitlines()[-1] if cluster_id.stdout.strip() else ""
        if cluster_id.returncode != 0 or not uuid:
            raise ComponentFailed(
                "kafka", f"could not make a cluster id: {cluster_id.stderr[-300:]}"
            )
        scram = f"SCRAM-SHA-512=[name={PLATFORM_USER},password={platform_password}]"
        result = _run(
            [
                java,
                "-cp",
                cp,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                uuid,
                "-c",
                str(self.config),
                "--add-scram",
                scram,
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise ComponentFailed("kafka", f"formatting storage failed: {result.stdout[-500:]}")

    def argv(self, java: str, libs: Path, heap: str) -> list[str]:
        return [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.config),
        ]

    def failure_detail(self) -> str:
        return tail(self.logs / "server.log", 15) or tail(self.logs / "stdout.log", 15)


def new_secret() -> str:
    """A password for a generated credential (URL- and JAAS-safe characters only)."""
    return secrets.token_urlsafe(24)


async def kafka_ready(bootstrap: str, username: str, password: str, timeout: float) -> bool:
    """True when the broker authenticates us and answers a metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=username,
        sasl_plain_password=password,
        request_timeout_ms=int(max(timeout, 1) * 1000),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:  # any failure means "not ready yet"; the caller retries or reports
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), 5)
