"""The committed JSON Schemas are what the code generates, and they describe real records."""

from pathlib import Path

import msgspec

from engine import schemas

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schemas_are_fresh() -> None:
    assert schemas.stale(ROOT / "schemas") == [], "run `make schemas` and commit the result"


def test_stale_detects_a_change(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.stale(tmp_path) == []
    (tmp_path / "cdr.json").write_text("{}")
    assert schemas.stale(tmp_path) == ["cdr.json"]


def test_cdr_schema_lists_the_public_fields() -> None:
    doc = msgspec.json.decode((ROOT / "schemas" / "cdr.json").read_bytes())
    cdr = doc["$defs"]["Cdr"]
    assert set(cdr["required"]) == {
        "cdr_id",
        "iccid",
        "service",
        "started_at",
        "volume",
        "mcc",
        "mnc",
    }
    assert sorted(cdr["properties"]["service"]["enum"]) == ["data", "event", "sms", "voice"]


def test_event_schema_covers_every_event_type() -> None:
    from engine.domain import EVENT_TYPES

    doc = msgspec.json.decode((ROOT / "schemas" / "event.json").read_bytes())
    assert {t.__name__ for t in EVENT_TYPES} <= set(doc["$defs"])


def test_descriptions_do_not_depend_on_how_msgspec_copies_docstrings() -> None:
    # msgspec 0.22 kept a docstring's indentation and 0.23 dedents it: both give one file.
    raw = {"description": "First line.\n\n    Indented body,\n    two lines.", "x": [{}]}
    dedented = {"description": "First line.\n\nIndented body,\ntwo lines.", "x": [{}]}
    assert schemas._normalised(raw) == schemas._normalised(dedented) == dedented


def test_no_committed_description_keeps_docstring_indentation() -> None:
    for name in schemas.SCHEMAS:
        text = (ROOT / "schemas" / name).read_text()
        assert "\\n    " not in text, f"{name} has an indented description line"


def test_event_schema_marks_the_former_names_deprecated() -> None:
    from engine.codec import RENAMED

    doc = msgspec.json.decode((ROOT / "schemas" / "event.json").read_bytes())
    defs = doc["$defs"]
    deprecated = {name for name, d in defs.items() if d.get("deprecated")}
    assert deprecated == set(RENAMED)
    for old, new in RENAMED.items():
        assert defs[old]["properties"]["type"] == {"enum": [old]}
        assert {k: v for k, v in defs[old]["properties"].items() if k != "type"} == {
            k: v for k, v in defs[new]["properties"].items() if k != "type"
        }
        assert doc["discriminator"]["mapping"][old] == f"#/$defs/{old}"
        assert {"$ref": f"#/$defs/{old}"} in doc["anyOf"]
        assert not defs[new].get("deprecated")
