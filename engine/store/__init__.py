"""The append-only event store: one interface (``base.EventStore``), SQLite and PostgreSQL."""
