"""ClickHouse projections of the event store: rated usage, balances, pools, revenue, suspensions.

``connect(url)`` opens ClickHouse (embedded chDB or a server); ``Projector(client, catalog)``
creates the tables of ``schema`` and folds events into them (``apply``, ``project``,
``rebuild``); ``rows`` is the pure mapping from events to rows.
"""

from .clickhouse import Client, ProjectionError, connect
from .projector import Projector

__all__ = ["Client", "ProjectionError", "Projector", "connect"]
