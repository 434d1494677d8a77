"""The catalog file: YAML in, a validated ``engine.domain.catalog.Catalog`` out.

``load_catalog`` reports every mistake in the file at once, each with its path and line;
``summarize`` prints what a loaded catalog holds. The format is described in
``docs/catalog.md``.
"""

from __future__ import annotations

from .errors import CatalogError, CatalogIssue
from .loader import load_catalog, load_catalog_text
from .summary import summarize

__all__ = ["CatalogError", "CatalogIssue", "load_catalog", "load_catalog_text", "summarize"]
