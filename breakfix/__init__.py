"""What users touch: the CLI, HTTP API, MCP server, settings, simulator, replay, scoring and report."""
