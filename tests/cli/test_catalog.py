"""``rating-engine catalog check``: a catalog validated and summarized, or counted as JSON;
``catalog publish``: checked, refused when it strands live state, published, told."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from engine.catalog import CatalogError, load_catalog
from engine.cli import catalog
from engine.domain.commands import AdoptCatalog
from engine.domain.routing import SimRoute
from engine.stream import publisher, revisions
from engine.stream.publisher import PublishResult
from engine.stream.topics import TopicSpec

from .parsing import run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def test_a_good_catalog_is_ok_and_summarized(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(catalog, "catalog", "check", str(EXAMPLE)) == 0
    first, *summary = capsys.readouterr().out.splitlines()
    assert first == f"{EXAMPLE}: ok"
    assert summary[0].split() == ["providers:", str(len(load_catalog(EXAMPLE).providers))]


def test_as_json_it_counts_each_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(catalog, "catalog", "check", str(EXAMPLE), "--json") == 0
    loaded = load_catalog(EXAMPLE)
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is True
    assert answer["counts"]["plans"] == len(loaded.plans)
    assert answer["counts"]["subscriptions"] == len(loaded.subscriptions)


def test_a_bad_catalog_is_the_catalogs_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: 1\n")
    with pytest.raises(CatalogError):  # main turns it into a message and exit 1
        run(catalog, "catalog", "check", str(bad))


# ---- catalog publish, with the broker's side stood in for (on a real broker:
# tests/stream/test_catalog_publish.py) ----------------------------------------------------


class Broker:
    """What ``catalog publish`` reads and sends, recorded: the revisions on the topic, the
    shared SIM-route table, the revisions published and the commands sent."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.revisions: dict[int, revisions.CatalogRevision] = {}
        self.routes: dict[str, dict[str, SimRoute]] = {}
        self.wallets: dict[str, object] = {}
        self.commands: list[AdoptCatalog] = []
        monkeypatch.setattr(revisions, "read_revisions", lambda b, t: dict(self.revisions))
        monkeypatch.setattr(revisions, "publish_revision", self.publish)
        monkeypatch.setattr(catalog, "read_directory", lambda b, t: (self.routes, self.wallets))
        monkeypatch.setattr(publisher, "publish_commands", self.send)

    def publish(self, bootstrap: str, topics: object, revision: revisions.CatalogRevision) -> bool:
        self.revisions[revision.revision] = revision
        return True

    def send(
        self, commands: list[AdoptCatalog], topic: TopicSpec, bootstrap: str, source: str
    ) -> PublishResult:
        self.commands.extend(commands)
        return PublishResult(source, topic.name, bootstrap, len(commands), len(commands))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    return Broker(monkeypatch)


def _without_plan(tmp_path: Path, plan: str) -> Path:
    """The example with one plan, and every subscription on it, taken out."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["plans"] = [p for p in data["plans"] if p["id"] != plan]
    data["subscriptions"] = [s for s in data["subscriptions"] if s["plan"] != plan]
    path = tmp_path / "smaller.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_first_publish_is_revision_1_and_every_wallet_is_told(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    broker.wallets = {"opened-by-command": object()}
    assert run(catalog, "catalog", "publish", str(EXAMPLE), "--no-progress") == 0
    [published] = broker.revisions.values()
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert (published.revision, published.digest, published.name) == (1, digest, "catalog.yaml")
    wallets = sorted([*load_catalog(EXAMPLE).wallets, "opened-by-command"])
    assert [c.wallet_id for c in broker.commands] == wallets
    assert {(c.command_id, c.revision, c.digest) for c in broker.commands} == {
        (f"adopt:1:{w}", 1, digest) for w in wallets
    }
    out = capsys.readouterr().out
    assert f"published as revision 1 (sha256 {digest[:12]}); AdoptCatalog sent to 5 of 5" in out


def test_the_latest_revision_again_publishes_nothing(
    broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    broker.revisions[3] = revisions.revision_of(EXAMPLE, 3)
    assert run(catalog, "catalog", "publish", str(EXAMPLE)) == 0
    assert "unchanged: already revision 3" in capsys.readouterr().out
    assert list(broker.revisions) == [3] and broker.commands == []


def test_a_stranding_change_is_refused_naming_what_depends_on_it(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker.revisions[1] = revisions.revision_of(EXAMPLE, 1)
    plan = load_catalog(EXAMPLE).subscriptions[next(iter(load_catalog(EXAMPLE).subscriptions))].plan
    smaller = _without_plan(tmp_path, plan)
    assert run(catalog, "catalog", "publish", str(smaller)) == 1
    err = capsys.readouterr().err
    assert f"{smaller} would strand live state; nothing was published" in err
    assert f"plan '{plan}' is removed, but" in err and "use it" in err
    assert list(broker.revisions) == [1] and broker.commands == []
    # As JSON: each problem with what depends on it.
    assert run(catalog, "catalog", "publish", str(smaller), "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and answer["status"] == "refused"
    assert {p["kind"] for p in answer["problems"]} >= {"plan_removed"}
    assert all(p["dependents"] for p in answer["problems"])


def test_a_dry_run_checks_and_sends_nothing(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker.revisions[1] = revisions.revision_of(EXAMPLE, 1)
    changed = tmp_path / "renamed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("ACME Logistics", "ACME Two", 1))
    assert run(catalog, "catalog", "publish", str(changed), "--dry-run", "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["status"], answer["revision"], answer["wallets"]) == ("dry-run", 2, 4)
    assert list(broker.revisions) == [1] and broker.commands == []


def test_a_bad_catalog_is_refused_before_the_broker_is_asked(
    broker: Broker, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: 1\n")
    with pytest.raises(CatalogError) as raised:  # main: file, path, problem; exit 1
        run(catalog, "catalog", "publish", str(bad))
    assert all(issue.file == str(bad) for issue in raised.value.issues)
    assert broker.revisions == {}
