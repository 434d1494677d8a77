"""How every Kafka client of the engine authenticates: one object, read from the environment.

A broker that anyone on the network can write to lets them forge ``ApplyCharge`` debits or
unlimited top-ups. So the clients speak TLS and authenticate with SASL/SCRAM when
``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` (the production setting): the worker's Faust/aiokafka
app (``faust_credentials``) and every confluent-kafka producer, consumer and admin client
(``client_config``) read the same ``KafkaSecurity``. The password comes from
``KAFKA_SASL_PASSWORD`` or, better, the file named by ``KAFKA_SASL_PASSWORD_FILE``; never a
flag. The broker decides what each principal may do (ACLs, see ``acls.py``).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from ..secrets import SecretError, secret
from .topics import StreamError

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SASL_PASSWORD = ("KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE")


class KafkaSecurity(msgspec.Struct, frozen=True):
    """TLS and SASL settings of a Kafka client. ``PLAINTEXT`` (the default) is for a laptop
    and tests only."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    """PEM file of the CA that signed the brokers' certificates (default: the system's)."""

    def __repr__(self) -> str:  # never the password
        return (
            f"KafkaSecurity(protocol={self.protocol!r}, mechanism={self.mechanism!r}, "
            f"username={self.username!r}, ca_file={self.ca_file!r})"
        )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``,
        ``KAFKA_SASL_PASSWORD`` / ``KAFKA_SASL_PASSWORD_FILE``, ``KAFKA_SSL_CA_FILE``."""
        env = os.environ if environ is None else environ
        protocol = env.get("KAFKA_SECURITY_PROTOCOL", "").strip().upper() or "PLAINTEXT"
        mechanism = env.get("KAFKA_SASL_MECHANISM", "").strip().upper() or "SCRAM-SHA-512"
        try:
            password = secret(SASL_PASSWORD, env)
        except SecretError as exc:
            raise StreamError(str(exc)) from None
        security = cls(
            protocol=protocol,
            mechanism=mechanism,
            username=env.get("KAFKA_SASL_USERNAME") or None,
            password=password,
            ca_file=env.get("KAFKA_SSL_CA_FILE") or None,
        )
        security.check()
        return security

    def check(self) -> None:
        """``StreamError`` for settings no client could connect with."""
        if self.protocol not in PROTOCOLS:
            raise StreamError(
                f"KAFKA_SECURITY_PROTOCOL={self.protocol}: expected one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise StreamError(
                    f"KAFKA_SASL_MECHANISM={self.mechanism}: expected one of "
                    f"{', '.join(MECHANISMS)}"
                )
            if not self.username or not self.password:
                raise StreamError(
                    f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE "
                    "(or KAFKA_SASL_PASSWORD)"
                )
        if self.ca_file and not Path(self.ca_file).is_file():
            raise StreamError(f"KAFKA_SSL_CA_FILE={self.ca_file}: no such file")

    def confluent(self) -> dict[str, Any]:
        """The librdkafka properties (confluent-kafka's config keys)."""
        config: dict[str, Any] = {"security.protocol": self.protocol.lower()}
        if self.sasl:
            config["sasl.mechanism"] = self.mechanism
            config["sasl.username"] = self.username
            config["sasl.password"] = self.password
        if self.tls and self.ca_file:
            config["ssl.ca.location"] = self.ca_file
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        # Verifies the broker's certificate and host name, against the CA file if given.
        return ssl.create_default_context(cafile=self.ca_file)

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for the Faust app (None for PLAINTEXT)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(
                username=self.username,
                password=self.password,
                mechanism=self.mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def client_config(
    bootstrap: str, security: KafkaSecurity | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``bootstrap.servers`` and the security properties for a confluent-kafka client;
    ``security`` defaults to the one the environment describes."""
    chosen = security if security is not None else KafkaSecurity.from_env(environ)
    if not chosen.tls:
        warn_if_exposed(bootstrap)
    return {"bootstrap.servers": bootstrap, **chosen.confluent()}


def loopback_only(bootstrap: str) -> bool:
    """Whether every server of ``bootstrap`` is on this machine's loopback interface."""
    hosts = [server.strip().rsplit(":", 1)[0].strip("[]") for server in bootstrap.split(",")]
    return all(h in ("localhost", "::1") or h.startswith("127.") for h in hosts if h)


@cache
def warn_if_exposed(bootstrap: str) -> None:
    """Once per process and bootstrap: a warning when Kafka is reached without TLS over a
    network, where anyone on the path can read and forge records."""
    if not loopback_only(bootstrap):
        log.warning(
            "Kafka at %s without TLS: anyone on the network can read and forge records; "
            "set KAFKA_SECURITY_PROTOCOL=SASL_SSL (docs/deploy.md, Secrets)",
            bootstrap,
        )
