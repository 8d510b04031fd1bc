"""Kafka clients: the connection factory, validating producer, topic creation, embedded broker."""
