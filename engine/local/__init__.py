"""One local stack for the tests, the benchmarks and the demo: a Kafka broker
(`broker`), the topics and the worker and sink processes on it (`stack`)."""

from .base import BrokerError, BrokerProvider, free_ports
from .broker import ExternalBroker, is_external, provider_from_env, running_broker
from .jar_broker import LocalJarBroker
from .process import Process, Scrape, StackError, run_command
from .stack import LocalStack, private_topics, sink_argv, worker_argv

__all__ = [
    "BrokerError",
    "BrokerProvider",
    "ExternalBroker",
    "LocalJarBroker",
    "LocalStack",
    "Process",
    "Scrape",
    "StackError",
    "free_ports",
    "is_external",
    "private_topics",
    "provider_from_env",
    "run_command",
    "running_broker",
    "sink_argv",
    "worker_argv",
]
