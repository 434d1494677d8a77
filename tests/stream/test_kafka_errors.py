"""The KafkaError inside a confluent-kafka exception (engine/stream/kafka_errors.py): found
directly or through the exceptions it was raised from, and a KafkaException carrying plain
text or nothing is reported as what it says, never an IndexError or AttributeError. How
outage.py reads one is tested with outage.py (test_outage.py); the other call sites' handling
of the errors a broker really gives is tested against the broker."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from engine.stream.kafka_errors import kafka_error, kafka_text

TRANSPORT = KafkaError(KafkaError._TRANSPORT)
WITHOUT_ERROR = [KafkaException(), KafkaException("text"), ValueError("text")]


def raised(exc: BaseException, under: BaseException, how: str) -> BaseException:
    """``exc`` raised while ``under`` was handled, ``from`` it when ``how`` says so."""
    try:
        try:
            raise under
        except BaseException as inner:
            if how == "cause":
                raise exc from inner
            raise exc  # noqa: B904 (the implicit chain, __context__, is the point)
    except BaseException as outer:
        return outer


def test_the_error_is_found_directly_and_through_the_chain() -> None:
    assert kafka_error(KafkaException(TRANSPORT)) is TRANSPORT
    for how in ("cause", "context"):
        chained = raised(SystemError("callback failed"), KafkaException(TRANSPORT), how)
        assert chained.__cause__ if how == "cause" else chained.__context__
        assert kafka_error(chained) is TRANSPORT
        assert kafka_text(chained) == "Local: Broker transport failure"


@pytest.mark.parametrize("exc", WITHOUT_ERROR, ids=repr)
def test_no_error_without_a_kafka_error(exc: BaseException) -> None:
    assert kafka_error(exc) is None
    assert kafka_text(exc) == str(exc)


def test_the_text_is_the_errors_own_not_its_repr() -> None:
    error = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied")
    assert kafka_text(KafkaException(error)) == "denied"
    assert kafka_text(KafkaException(TRANSPORT)) == TRANSPORT.str() != str(TRANSPORT)
    assert kafka_text(KafkaException()) == ""
    assert kafka_text(KafkaException("text")) == "text"
