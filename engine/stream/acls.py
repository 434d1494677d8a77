"""Who may read and write which topic: the engine's ACL set, applied by ``topics apply --acls``.

Every client authenticates (``kafka_security.py``); the broker, with
``allow.everyone.if.no.acl.found=false``, then lets each principal do only what is granted
here. A principal stands for a role:

- ``publisher`` (operators' CDR feeds): write ``cdr.raw``.
- ``operator`` (top-ups, vouchers, plan changes: ``rating-engine command``; re-rating:
  ``replay --mode stream``; ``rating-engine rejected``; ``catalog publish``): write
  ``wallet.commands``, ``cdr.raw`` and ``catalog.revisions``, read ``cdr.rejected`` and
  ``catalog.revisions``, see whether the workers' group runs.
- ``worker``: read ``cdr.raw``, ``cdr.by-wallet``, ``wallet.commands``, ``wallet.events``;
  write ``cdr.by-wallet``, ``cdr.rejected``, ``wallet.commands``, ``wallet.events``,
  ``network.actions``, ``wallet.snapshots``; its consumer groups; its wallet partitions'
  transactional ids (``<app id>-wallet-<n>``); everything on its own ``<app id>-`` topics
  (the changelogs Faust creates); read ``catalog.revisions`` (the catalogs it decides with;
  it writes revision 1 when it starts on an empty topic).
- ``sink``: read ``wallet.events`` and ``catalog.revisions``; its consumer group.

Readers of ``catalog.revisions`` only assign its one partition; the group they name
(``rating-engine-catalog``) is granted so that naming it is never refused.

Nobody else writes ``wallet.commands`` or ``wallet.events``: a stolen publisher password
can send CDRs, which are rated at the catalog's prices, but cannot forge a charge, a top-up
or an event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from .admin import admin_client
from .directory import DIRECTORY_GROUP
from .kafka_errors import kafka_text
from .recovery import RECOVERY_GROUP
from .topics import StreamError, Topics

CATALOG_GROUP = "rating-engine-catalog"
"""The group id the readers of ``catalog.revisions`` name (revisions.py); never joined."""

ROLES = ("publisher", "operator", "worker", "sink")
DEFAULT_PRINCIPALS: dict[str, str] = {role: f"User:rating-{role}" for role in ROLES}
REJECTED_GROUP = "rating-engine-rejected"
"""The group id `rating-engine rejected` reads ``cdr.rejected`` with (it never commits)."""
TIMEOUT = 30.0


class Grant(msgspec.Struct, frozen=True, order=True):
    """One allowed operation of a principal on a resource (``topic``, ``group``,
    ``cluster``), named literally or by prefix."""

    principal: str
    resource: str
    name: str
    operation: str
    prefixed: bool = False


def principals(pairs: Sequence[str] = ()) -> dict[str, str]:
    """The default principal of each role, overridden by ``role=User:name`` pairs."""
    chosen = dict(DEFAULT_PRINCIPALS)
    for pair in pairs:
        role, sep, principal = pair.partition("=")
        if not sep or role not in ROLES or not principal.startswith("User:"):
            raise StreamError(
                f"--principal {pair!r}: expected ROLE=User:NAME with ROLE one of {', '.join(ROLES)}"
            )
        chosen[role] = principal
    return chosen


def acl_set(
    topics: Topics,
    who: Mapping[str, str] | None = None,
    app_id: str = "rating-engine",
    sink_group: str = "rating-engine-sink",
) -> list[Grant]:
    """Every grant the engine needs, and no more."""
    p = dict(DEFAULT_PRINCIPALS) if who is None else dict(who)
    grants: list[Grant] = []

    def topic(role: str, name: str, *operations: str, prefixed: bool = False) -> None:
        for op in operations:
            grants.append(Grant(p[role], "topic", name, op, prefixed))

    def group(role: str, name: str) -> None:
        grants.extend(Grant(p[role], "group", name, op) for op in ("READ", "DESCRIBE"))

    topic("publisher", topics.cdr_raw.name, "WRITE", "DESCRIBE")
    topic("operator", topics.wallet_commands.name, "WRITE", "DESCRIBE")
    # `rejected list/export/republish`: read what was rejected, send it back where it came
    # from; `replay --mode stream` checks the workers' group before it sends adjustments.
    topic("operator", topics.cdr_rejected.name, "READ", "DESCRIBE")
    topic("operator", topics.cdr_raw.name, "WRITE", "DESCRIBE")
    group("operator", REJECTED_GROUP)
    grants.append(Grant(p["operator"], "group", app_id, "DESCRIBE"))
    for spec in (topics.cdr_raw, topics.cdr_by_wallet, topics.wallet_commands):
        topic("worker", spec.name, "READ", "DESCRIBE")
    topic("worker", topics.wallet_events.name, "READ")
    for spec in (
        topics.cdr_by_wallet,
        topics.cdr_rejected,
        topics.wallet_commands,
        topics.wallet_events,
        topics.network_actions,
    ):
        topic("worker", spec.name, "WRITE", "DESCRIBE")
    topic("worker", f"{app_id}-", "ALL", prefixed=True)  # Faust's changelog topics
    # Each wallet partition's transactional producer (fencing.py) and its snapshots.
    topic("worker", topics.wallet_snapshots.name, "READ", "WRITE", "DESCRIBE")
    # The shared SIM-route table: each owner writes its wallets' entries, every worker reads
    # it whole; `catalog publish` reads it to refuse a stranding revision.
    topic("worker", topics.wallet_directory.name, "READ", "WRITE", "DESCRIBE")
    topic("operator", topics.wallet_directory.name, "READ", "DESCRIBE")
    group("worker", DIRECTORY_GROUP)
    group("operator", DIRECTORY_GROUP)
    for op in ("WRITE", "DESCRIBE"):
        grants.append(Grant(p["worker"], "transactional_id", f"{app_id}-wallet-", op, True))
    group("worker", app_id)
    group("worker", RECOVERY_GROUP)
    topic("sink", topics.wallet_events.name, "READ", "DESCRIBE")
    group("sink", sink_group)
    grants += _catalog_revisions(topics.catalog_revisions.name, p)
    for role in ("publisher", "operator", "worker"):  # idempotent producers
        grants.append(Grant(p[role], "cluster", "kafka-cluster", "IDEMPOTENT_WRITE"))
    return sorted(set(grants))


def _catalog_revisions(name: str, p: Mapping[str, str]) -> list[Grant]:
    """``catalog.revisions``: the operator's ``catalog publish`` reads the latest revision and
    writes the next; a worker reads the catalogs it decides with and writes revision 1 (its
    ``--catalog``) when none was published; the sink reads them into the store."""
    operations = {"operator": ("READ", "WRITE"), "worker": ("READ", "WRITE"), "sink": ("READ",)}
    grants = []
    for role, allowed in operations.items():
        grants += [Grant(p[role], "topic", name, op) for op in (*allowed, "DESCRIBE")]
        grants += [Grant(p[role], "group", CATALOG_GROUP, op) for op in ("READ", "DESCRIBE")]
    return grants


def _binding(grant: Grant) -> AclBinding:
    return AclBinding(
        # confluent-kafka calls Kafka's CLUSTER resource type BROKER.
        ResourceType.BROKER
        if grant.resource == "cluster"
        else ResourceType[grant.resource.upper()],
        grant.name,
        ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
        grant.principal,
        "*",
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


class AclReport(msgspec.Struct, frozen=True):
    applied: list[Grant]
    failed: list[str]

    @property
    def ok(self) -> bool:
        return not self.failed


def apply_acls(grants: Sequence[Grant], bootstrap: str) -> AclReport:
    """Create every grant on the broker (creating one that exists changes nothing)."""
    admin: Any = admin_client(bootstrap)
    failed: list[str] = []
    try:
        futures = admin.create_acls([_binding(g) for g in grants], request_timeout=TIMEOUT)
    except (KafkaException, ValueError) as exc:
        raise StreamError(f"cannot apply the ACLs: {kafka_text(exc)}") from None
    for binding, future in futures.items():
        try:
            future.result(timeout=TIMEOUT)
        except KafkaException as exc:
            failed.append(f"{binding}: {kafka_text(exc)}")
    return AclReport(list(grants), failed)


def render(report: AclReport) -> str:
    lines = [f"{len(report.applied)} ACLs applied:"]
    width = max((len(g.principal) for g in report.applied), default=0)
    for g in report.applied:
        name = g.name + ("*" if g.prefixed else "")
        lines.append(f"  {g.principal:<{width}}  {g.operation:<16} {g.resource} {name}")
    lines += [f"  FAILED {f}" for f in report.failed]
    return "\n".join(lines)
