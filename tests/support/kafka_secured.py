"""A local broker that only speaks SASL_SSL with SCRAM-SHA-512 and enforces ACLs.

The same KRaft node as ``LocalJarBroker``, with a throwaway CA made at start (openssl), a
broker certificate for 127.0.0.1 signed by it (PEM key store, so no keytool), SCRAM users
created by Kafka's own ``kafka-storage format --add-scram``, and the standard authorizer
with ``allow.everyone.if.no.acl.found=false``: a principal may do only what an ACL grants.
``admin`` is the super user that applies the ACLs. The controller listener stays PLAINTEXT
on 127.0.0.1 (KRaft controllers cannot use SCRAM): clients never reach it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.local import BrokerError
from engine.local.jar_broker import LocalJarBroker, server_properties
from engine.stream.kafka_security import KafkaSecurity

MECHANISM = "SCRAM-SHA-512"
USERS = ("admin", "rating-publisher", "rating-operator", "rating-worker", "rating-sink", "intruder")
"""``intruder`` has a valid login and no ACL: what a stolen operator password would give."""


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise BrokerError("openssl not found: deploy/local/system.sh installs it")
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerError(f"openssl {args[0]} failed:\n{done.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA (``ca.pem``) and a PEM key store for the broker (key, certificate, CA), valid
    for 127.0.0.1 and localhost. Returns (CA file, key store file)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=rating-engine test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "broker.pem", "-extfile", "broker.ext",
        cwd=directory,
    )  # fmt: skip
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        "".join((directory / n).read_text() for n in ("broker.key", "broker.pem", "ca.pem"))
    )
    return directory / "ca.pem", keystore


def override(text: str, settings: dict[str, str]) -> str:
    """``text`` (a .properties file) with each key set to its value, replaced or added."""
    lines = [line for line in text.splitlines() if line.split("=", 1)[0].strip() not in settings]
    return "\n".join([*lines, *(f"{k}={v}" for k, v in settings.items())]) + "\n"


class SecuredLocalJarBroker(LocalJarBroker):
    """``LocalJarBroker`` on SASL_SSL only, with SCRAM users and ACLs enforced."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.passwords = {user: secrets.token_urlsafe(18) for user in USERS}
        self.ca_file: Path | None = None

    def security(self, user: str) -> KafkaSecurity:
        """What a client logging in as ``user`` is configured with."""
        return KafkaSecurity(
            protocol="SASL_SSL",
            mechanism=MECHANISM,
            username=user,
            password=self.passwords[user],
            ca_file=str(self.ca_file) if self.ca_file else None,
        )

    def env(self, user: str, password_file: Path) -> dict[str, str]:
        """The environment a ``rating-engine`` process logging in as ``user`` needs; the
        password goes into ``password_file``, never into the environment itself."""
        password_file.write_text(self.passwords[user])
        password_file.chmod(0o600)
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(password_file),
            "KAFKA_SSL_CA_FILE": str(self.ca_file),
        }

    def _properties(self, data_dir: Path, port: int, controller_port: int) -> str:
        ca, keystore = make_certificates(data_dir / "tls")
        self.ca_file = ca
        admin = self.passwords["admin"]
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="admin" password="{admin}";'
        )
        return override(
            server_properties(data_dir, port, controller_port),
            {
                "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
                "inter.broker.listener.name": "SASL_SSL",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
                "sasl.enabled.mechanisms": MECHANISM,
                "sasl.mechanism.inter.broker.protocol": MECHANISM,
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(ca),
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                # The controller listener is PLAINTEXT on loopback: its principal is ANONYMOUS.
                "super.users": "User:admin;User:ANONYMOUS",
            },
        )

    def _format_args(self) -> list[str]:
        args: list[str] = []
        for user, password in self.passwords.items():
            args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
        return args

    def _client(self) -> dict[str, Any]:
        return self.security("admin").confluent()
