"""Telemetry collectors behind ``breakfix collect SOURCE``: one module per source, one loop (base.run).

Each collector reads one source and yields envelope dicts in the contract; sinks validate and write
them to a recording or to Kafka. Device APIs (NVML, Kubernetes, SLURM commands) are injected through
small protocols so tests drive the real code against doubles of the device, never patched modules.
"""
