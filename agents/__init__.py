"""What runs on GPU nodes: the telemetry collectors and the node agent."""
