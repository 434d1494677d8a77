"""The KafkaError inside a confluent-kafka exception, found one way everywhere.

librdkafka reports a failed call by raising ``KafkaException`` whose first argument is a
``KafkaError`` (its code, whether it is retriable or fatal, its text). Sometimes that
exception arrives chained under another one: a delivery callback that fails inside
``flush`` surfaces as a ``SystemError`` caused by it. And a ``KafkaException`` can also
carry plain text, or nothing at all, so reading ``exc.args[0]`` as a KafkaError is not safe:
`kafka_error` is the lookup, `kafka_text` the message to show either way.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The Kafka error of ``exc`` or of an exception it was raised from (a delivery callback
    that fails inside ``flush`` surfaces as a SystemError caused by it); ``None`` when none
    of them carries one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KafkaException) and seen.args:
            error = seen.args[0]
            if isinstance(error, KafkaError):
                return error
        seen = seen.__cause__ or seen.__context__
    return None


def kafka_text(exc: BaseException) -> str:
    """What went wrong, for a message: the Kafka error's own text when there is one (not
    its ``KafkaError{code=...}`` form), else the exception's."""
    error = kafka_error(exc)
    return error.str() if error is not None else str(exc)
