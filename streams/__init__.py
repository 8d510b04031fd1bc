"""The streaming shell: Faust app, topics, node/guard/sink stages, embedded broker, replay into Kafka."""
