"""The streaming path: Kafka topics, publishing into them, and the Faust worker.

``topics`` reads ``topics.yaml`` (every topic name comes from there), ``admin`` creates the
topics, ``publisher`` sends CDR files and commands. Nothing is imported here, so that
``import engine.stream.topics`` does not pull in Faust or a Kafka client.
"""
