"""The in-process pipeline: every input through the flow (``engine.flow.run``), in order.

It keeps what the flow does not: the wallets' states, the SIM moves it has seen (its
routes: one process sees every decision), the counts for the summary and, for the event
store, the decisions. The Kafka workers run the same flow across partitions.
"""

from __future__ import annotations

from collections import Counter

from ..codec import Rejected, encode, internal_error
from ..domain import Catalog, Cdr, Command, Event, WalletState, initial_state
from ..domain.decision import Decision
from ..domain.events import CdrRejected, UsageRated
from ..domain.routing import MOVES, SimRoute, routes_after, with_routes
from ..flow import Revisions, catalog_at, run


class Pipeline:
    """Wallet states plus the SIM directory, fed one input at a time."""

    def __init__(
        self, catalog: Catalog, record_inputs: bool = False, revisions: Revisions | None = None
    ) -> None:
        self.catalog = catalog
        self.revisions: Revisions = revisions if revisions is not None else {1: catalog}
        """Every catalog revision a wallet may adopt (``AdoptCatalog``); 1 is the first."""
        self.states: dict[str, WalletState] = {}
        self.routes: dict[str, dict[str, SimRoute]] = {}
        """The SIM-route table as the stream's would be: what each decision moved."""
        self.rejected: Counter[str] = Counter()
        self.rated = 0
        self.record_inputs = record_inputs
        self.decided: list[Decision] = []
        """With ``record_inputs``: every decision with events, for the event store; the
        caller drains it."""

    def state(self, wallet_id: str) -> WalletState:
        s = self.states.get(wallet_id)
        return s if s is not None else initial_state(wallet_id)

    def feed(self, item: Cdr | Command) -> list[Event] | Rejected:
        """Run one input through the flow (``flow.run``); returns its events (with any routed
        follow-ups) or a rejection for a record that reached no wallet: no SIM or wallet of
        that id, an instant out of bounds, or a failure deciding it (``internal_error``), as
        the stream does. A rejected input leaves every wallet as it was."""
        try:
            result = run(self.revisions, self.routes, self.state, item)
        except Exception as exc:
            ids = (item.cdr_id, item.iccid) if isinstance(item, Cdr) else (None, None)
            result = internal_error(exc, "", encode(item), *ids)
        if isinstance(result, Rejected):
            self.reject(result)
            return result
        self.states.update(result.states)
        events: list[Event] = []
        for decision in result.decisions:
            if decision.events and self.record_inputs:
                self.decided.append(decision)
            events.extend(decision.events)
            if any(isinstance(e, MOVES) for e in decision.events):
                self._route(decision.wallet_id, decision.events)
        for e in events:
            if isinstance(e, UsageRated):
                self.rated += 1
            elif isinstance(e, CdrRejected):
                self.rejected[e.reason] += 1
        return events

    def _route(self, wallet_id: str, events: tuple[Event, ...]) -> None:
        ts = int(events[0].at.timestamp())
        state = self.states[wallet_id]
        catalog = catalog_at(self.revisions, state.revision)
        with_routes(self.routes, routes_after(state, catalog, events, ts))

    def reject(self, rejection: Rejected) -> None:
        self.rejected[rejection.reason] += 1
