"""Rating without Kafka: the same decider, driven in process from files."""
