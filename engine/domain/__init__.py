"""The pure core: rating, pools and wallet rules. No I/O, no clock, no randomness.

``decide(state, input, catalog) -> events`` holds every rule; ``evolve(state, event) -> state``
applies one event; ``step`` does both at once. Nothing here imports from the rest of the
engine.
"""

from .catalog import Catalog
from .cdr import Cdr
from .commands import (
    COMMAND_TYPES,
    AdjustRating,
    ApplyCharge,
    AttachSim,
    ChangePlan,
    Command,
    DetachSim,
    RedeemVoucher,
    Tick,
    TopUp,
    WriteOffDebt,
)
from .decision import Decision, Input, Origin
from .events import EVENT_TYPES, NETWORK_ACTIONS, Event, RatingAdjusted, UsageRated
from .evolve import evolve, fold
from .money import allocate, format_money, parse_money, parse_price
from .state import WalletState, initial_state
from .wallet import decide, step

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "NETWORK_ACTIONS",
    "AdjustRating",
    "ApplyCharge",
    "AttachSim",
    "Catalog",
    "Cdr",
    "ChangePlan",
    "Command",
    "Decision",
    "DetachSim",
    "Event",
    "Input",
    "Origin",
    "RatingAdjusted",
    "RedeemVoucher",
    "Tick",
    "TopUp",
    "UsageRated",
    "WalletState",
    "WriteOffDebt",
    "allocate",
    "decide",
    "evolve",
    "fold",
    "format_money",
    "initial_state",
    "parse_money",
    "parse_price",
    "step",
]
