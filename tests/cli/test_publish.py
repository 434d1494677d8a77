"""``rating-engine publish``: its exit code says whether every record was delivered. (Sending
to a broker: tests/stream/test_publish.py.)"""

from __future__ import annotations

import json

import msgspec
import pytest

from engine.cli import publish
from engine.cli.args import UsageError
from engine.stream.publisher import PublishResult

from .parsing import run


def result(**changes: object) -> PublishResult:
    sent = PublishResult("cdrs.jsonl", "cdr.raw", "b:9092", records=3, delivered=3)
    return msgspec.structs.replace(sent, **changes)


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ({}, 0),
        ({"delivered": 2, "failed": 1, "errors": {"timed out": 1}}, 1),
        ({"stopped": "the broker refused the producer"}, 1),
        ({"interrupted": True}, 130),
    ],
)
def test_the_exit_code_says_whether_all_was_delivered(
    outcome: dict[str, object], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish.report(result(**outcome), as_json=False) == code
    assert capsys.readouterr().out.startswith("cdrs.jsonl -> cdr.raw: ")


def test_as_json_the_whole_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert publish.report(result(failed=1, errors={"too large": 1}), as_json=True) == 1
    printed = json.loads(capsys.readouterr().out)
    assert (printed["failed"], printed["errors"]) == (1, {"too large": 1})


@pytest.mark.parametrize("rate", ["0", "-5"])
def test_a_rate_that_is_not_positive_is_refused_before_sending(rate: str) -> None:
    with pytest.raises(UsageError, match="--rate must be a positive number"):
        run(publish, "publish", "--input", "cdrs.jsonl", "--bootstrap", "b:1", "--rate", rate)
