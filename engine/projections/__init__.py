"""ClickHouse projections of the event store: rated usage, balances, pools, revenue, suspensions.

``connect(url)`` opens ClickHouse (embedded chDB or a server); ``Projector(client, catalog)``
creates the tables of ``schema`` and folds events into them (``apply``, ``project``,
``rebuild``). ``schema`` holds the DDL and the SQL that maps events to rows; ``rows`` maps
the catalog to its tables.
"""

from .clickhouse import Client, ProjectionError, connect
from .projector import Projector

__all__ = ["Client", "ProjectionError", "Projector", "connect"]
