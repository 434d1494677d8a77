"""The in-process pipeline: route each input to its wallet, decide, and follow up.

This is the whole data flow of the stream in one process: enrichment (ICCID -> wallet),
the rating decider per wallet, and the routed charges that split billing sends to another
wallet. The Kafka workers run the same steps across partitions.
"""

from __future__ import annotations

from collections import Counter

from ..codec import Rejected, encode, internal_error, raw_fields, route_cdr
from ..domain import Catalog, Cdr, Command, Event, WalletState, initial_state, step
from ..domain.events import CdrRejected, SimAttached, UsageRated
from ..domain.limits import admission
from ..domain.routing import routed_charges


class Pipeline:
    """Wallet states plus the SIM directory, fed one input at a time."""

    def __init__(self, catalog: Catalog, record_inputs: bool = False) -> None:
        self.catalog = catalog
        self.states: dict[str, WalletState] = {}
        self.moves: dict[str, str] = {}
        self.rejected: Counter[str] = Counter()
        self.rated = 0
        self.record_inputs = record_inputs
        self.decided: list[tuple[str, Cdr | Command]] = []
        """With ``record_inputs``: ``(wallet_id, input)`` of every decision with events, for
        the event store; the caller drains it."""

    def state(self, wallet_id: str) -> WalletState:
        s = self.states.get(wallet_id)
        return s if s is not None else initial_state(wallet_id)

    def reject(self, rejection: Rejected) -> None:
        self.rejected[rejection.reason] += 1

    def route(self, cdr: Cdr) -> str | Rejected:
        return route_cdr(self.catalog, self.moves, cdr)

    def feed(self, item: Cdr | Command) -> list[Event] | Rejected:
        """Decide on one input; returns its events (with any routed follow-ups) or a
        rejection for a record that reached no wallet: no SIM or wallet of that id, an
        instant out of bounds (``admission``), or a failure deciding it (``internal_error``),
        as the stream does. A rejected input leaves every wallet as it was."""
        try:
            result = self._feed(item)
        except Exception as exc:
            ids = (item.cdr_id, item.iccid) if isinstance(item, Cdr) else (None, None)
            result = internal_error(exc, "", encode(item), *ids)
        if isinstance(result, Rejected):
            self.reject(result)
        return result

    def _feed(self, item: Cdr | Command) -> list[Event] | Rejected:
        if isinstance(item, Cdr):
            target = self.route(item)
            if isinstance(target, Rejected):
                return target
        else:
            target = item.wallet_id
        refused = admission(self.catalog, target, item)
        if refused is not None:
            cdr_id, iccid = (item.cdr_id, item.iccid) if isinstance(item, Cdr) else (None, None)
            fields = raw_fields(encode(item))
            return Rejected(*refused, cdr_id=cdr_id, iccid=iccid, wallet_id=target, **fields)
        # Decided in full before anything is kept: a routed follow-up failing after its
        # cause must not leave the cause's wallet changed.
        states: dict[str, WalletState] = {}
        decided: list[tuple[str, Cdr | Command]] = []
        events = self._decide(states, decided, target, item)
        for charge in list(routed_charges(events)):
            events.extend(self._decide(states, decided, charge.wallet_id, charge))
        self.states.update(states)
        if self.record_inputs:
            self.decided.extend(decided)
        for e in events:
            if isinstance(e, UsageRated):
                self.rated += 1
            elif isinstance(e, CdrRejected):
                self.rejected[e.reason] += 1
            elif isinstance(e, SimAttached):
                self.moves[e.iccid] = e.wallet_id
        return events

    def _decide(
        self,
        states: dict[str, WalletState],
        decided: list[tuple[str, Cdr | Command]],
        wallet_id: str,
        item: Cdr | Command,
    ) -> list[Event]:
        state = states.get(wallet_id)
        events, states[wallet_id] = step(
            state if state is not None else self.state(wallet_id), item, self.catalog
        )
        if events:
            decided.append((wallet_id, item))
        return events
