"""The identifiers of inputs and events: one place that makes them and reads them.

They are a contract: the store, the sink, replay and every worker recognise a retried input
or a repeated event by them, so the same input must always give the same ids.

- An input's key: ``cdr:<source>/<cdr_id>`` (``cdr:<cdr_id>`` without a source) for a CDR,
  ``cmd:<command_id>`` for a command.
- An event's id: ``<input key>#<position in the decision>``; a rejection's is
  ``<input key>#<reason>``, so an input rejected and later accepted never reuses an id.
- A wallet's opening: ``open:<wallet>#0``, its opening grants ``open:<wallet>/<i>``.
- Commands the engine sends itself: ``adj:<CDR key>:<k>`` (a replay's ``k``-th correction of
  a CDR) and ``route:<event id>`` (the payer's debit of a split-billing ``UsageRated``).
- What a ``Charged`` is for (its ``ref``, also the key of a recurring charge's last cycle):
  an ICCID (a SIM's MRC or restart fee), ``<ICCID>/<add-on>``, ``pool:<pool>`` (a pool's
  fee), ``plan:<plan>`` (a restart fee charged once per wallet).
"""

from __future__ import annotations

CDR = "cdr:"
COMMAND = "cmd:"
OPENING = "open:"
ADJUSTMENT = "adj:"
ROUTED = "route:"
ROUTED_COMMAND = COMMAND + ROUTED


def cdr_key(source: str | None, cdr_id: str) -> str:
    """A CDR's key: ids are unique per source."""
    return f"{CDR}{source}/{cdr_id}" if source else f"{CDR}{cdr_id}"


def command_key(command_id: str) -> str:
    return f"{COMMAND}{command_id}"


def is_command(key_or_event_id: str) -> bool:
    """True for a command's key, or for an event decided from a command."""
    return key_or_event_id.startswith(COMMAND)


def is_routed_command(key: str) -> bool:
    """True for the key of a payer's debit of split-billing usage (``routed_command_id``)."""
    return key.startswith(ROUTED_COMMAND)


def is_cdr(key: str) -> bool:
    return key.startswith(CDR)


def event_id(key: str, position: int) -> str:
    return f"{key}#{position}"


def rejection_id(key: str, reason: str) -> str:
    return f"{key}#{reason}"


def input_key(event_id: str) -> str:
    """The key of the input an event was decided from."""
    return event_id.rpartition("#")[0]


def opening_id(wallet_id: str) -> str:
    return f"{OPENING}{wallet_id}#0"


def opening_grant_id(wallet_id: str, index: int) -> str:
    return f"{OPENING}{wallet_id}/{index}"


def adjustment_id(cdr_key: str, k: int) -> str:
    """The command id of the ``k``-th adjustment (1-based) of the CDR ``cdr_key``."""
    return f"{ADJUSTMENT}{cdr_key}:{k}"


def adjusted_cdr_key(event_id: str) -> str:
    """The key of the CDR an adjustment's event corrects (part of its command's id)."""
    command_id = input_key(event_id).removeprefix(COMMAND).removeprefix(ADJUSTMENT)
    return command_id.rpartition(":")[0]


def routed_command_id(event_id: str) -> str:
    """The id of the payer's debit for a split-billing ``UsageRated``: sent twice, debited
    once."""
    return f"{ROUTED}{event_id}"


def addon_ref(iccid: str, addon_id: str) -> str:
    return f"{iccid}/{addon_id}"


def pool_ref(pool_id: str) -> str:
    return f"pool:{pool_id}"


def plan_ref(plan_id: str) -> str:
    return f"plan:{plan_id}"


def closing_ref(pool_id: str) -> str:
    """The ``recurring`` entry naming the last cycle of a pool that closed."""
    return f"close:{pool_id}"
