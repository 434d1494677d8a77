"""ClickHouse projections of the event store: rated usage, balances, pools, revenue, suspensions.

``clickhouse.connect(url)`` opens ClickHouse (embedded chDB or a server);
``projector.Projector(client, catalog)`` creates the tables of ``schema`` and folds events
into them (``apply``, ``project``, ``rebuild``). ``schema`` holds the DDL and the SQL that
maps events to rows; ``rows`` maps the catalog to its tables.

This file imports nothing: the CLI imports ``clickhouse.ProjectionError`` for every command,
and a command that never projects (the worker) should not load the ClickHouse client.
"""
