"""``load_catalog``: a YAML file -> a validated ``Catalog``, or every mistake at once."""

from __future__ import annotations

from pathlib import Path

from engine.domain.catalog import Catalog, build_catalog

from .errors import CatalogError, CatalogIssue
from .limits import read_limits
from .plans import read_plans
from .reader import Ctx
from .sections import (
    read_pools,
    read_providers,
    read_settings,
    read_vouchers,
    read_wallets,
    read_zones,
)
from .subscriptions import read_subscriptions
from .yaml_source import Source, parse_json, parse_yaml, read_json, read_yaml

TOP_KEYS = (
    "settings",
    "providers",
    "zones",
    "plans",
    "pools",
    "wallets",
    "subscriptions",
    "vouchers",
)
REQUIRED = ("providers", "zones", "plans", "wallets")


def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and build the catalog at ``path``.

    Raises ``CatalogError`` listing every issue found (file, path, line, message); an
    unreadable file and a YAML syntax error are ``CatalogError`` too.
    """
    source = read_json(path)
    if source is not None:
        try:
            return _load(source)
        except CatalogError:
            pass  # read it again as YAML: each issue with its line
    return _load(read_yaml(path))


def load_catalog_text(text: str, name: str) -> Catalog:
    """Validate and build the catalog whose YAML is ``text`` (a published revision's
    source); ``name`` stands for the file in every issue, as ``load_catalog``'s path does."""
    source = parse_json(text, name)
    if source is not None:
        try:
            return _load(source)
        except CatalogError:
            pass  # read it again as YAML: each issue with its line
    return _load(parse_yaml(text, name))


def _load(source: Source) -> Catalog:
    ctx = Ctx(source)
    if source.data is None:
        ctx.issue("", f"the file is empty: a catalog needs {', '.join(REQUIRED)}", 1)
        raise CatalogError(ctx.issues)
    top = ctx.mapping("", source.data, TOP_KEYS)
    if top is None:
        raise CatalogError(ctx.issues)
    for key in REQUIRED:
        if not top.has(key):
            ctx.issue(key, f"missing required key '{key}'")
    # Dependency order: each section only refers to ids declared in the ones before it.
    dedup_window = read_settings(ctx, top.raw("settings"))
    limits = read_limits(ctx, top.raw("settings"))
    providers = read_providers(ctx, top.raw("providers"))
    zones = read_zones(ctx, top.raw("zones"))
    wallets = read_wallets(ctx, top.raw("wallets"))
    plans = read_plans(ctx, top.raw("plans"), wallets)
    pools = read_pools(ctx, top.raw("pools"))
    subscriptions = read_subscriptions(ctx, top.raw("subscriptions"), wallets, plans, pools)
    vouchers = read_vouchers(ctx, top.raw("vouchers"))
    if ctx.issues:
        raise CatalogError(sorted(ctx.issues, key=_file_order))
    return build_catalog(
        providers=providers,
        zones=zones,
        plans=plans,
        pools=pools,
        wallets=wallets,
        subscriptions=subscriptions,
        vouchers=vouchers,
        dedup_window=dedup_window,
        limits=limits,
    )


def _file_order(issue: CatalogIssue) -> tuple[bool, int]:
    # Sections are read in dependency order, not file order; report them as they appear.
    return issue.line is None, issue.line or 0
