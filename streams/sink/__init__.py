"""The sink process: every topic into the ClickHouse audit store, at least once."""
