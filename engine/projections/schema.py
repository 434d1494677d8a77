"""Every ClickHouse table and view of the projections, and the SQL that maps events to rows.

One module per concern, gathered here for the projector and the tests: ``tables`` defines
each table's columns once (DDL, column lists and event mappings are generated from them),
``intake`` how events' JSON enters ClickHouse and which fields no projection reads, ``views``
what analysts query.
"""

from __future__ import annotations

from .intake import (
    INTAKE,
    INTAKE_COLUMNS,
    INTAKE_SETTINGS,
    INTAKE_TABLE,
    UNPROJECTED_EVENTS,
    UNPROJECTED_FIELDS,
    intake_from,
)
from .tables import (
    CATALOG_COLUMNS,
    CATALOG_TABLES,
    COLUMNS,
    FACT_TABLES,
    FACTS,
    MAPPINGS,
    TABLES,
)
from .views import NEW_POOL_BUCKETS, VIEWS

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_TABLES",
    "COLUMNS",
    "FACTS",
    "FACT_TABLES",
    "INTAKE",
    "INTAKE_COLUMNS",
    "INTAKE_SETTINGS",
    "INTAKE_TABLE",
    "MAPPINGS",
    "NEW_POOL_BUCKETS",
    "TABLES",
    "UNPROJECTED_EVENTS",
    "UNPROJECTED_FIELDS",
    "VIEWS",
    "intake_from",
]
