"""Fleet simulator: a synthetic GPU fleet that writes a recording in the event contract.

It exists so that policy changes can be judged before they touch a real fleet: ``simulate`` writes
background telemetry for every node plus faults injected from scenario files (YAML data), and a
ground-truth label per injected item, which ``breakfix score`` compares decisions against. The
simulated actuators (``actuators.py``) close the loop during ``breakfix replay --offline``.

Flow: ``fleet`` (layout) → ``background`` (healthy telemetry per 15 s tick) + ``faults`` (injectors
built from ``scenario`` files) → ``engine`` (time-ordered merge, streamed to JSONL) + ``labels``.
"""
