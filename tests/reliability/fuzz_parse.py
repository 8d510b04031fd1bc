"""atheris (libFuzzer) target over the input path: raw bytes -> parse -> per-node gate.

Run by test_bad_input.py in a subprocess (libFuzzer owns the process and exits it), or by hand:
``python tests/reliability/fuzz_parse.py -max_total_time=60 CORPUS_DIR``. A crash is any exception.
"""

from __future__ import annotations

import sys

import atheris
import orjson  # noqa: F401 - imported before instrumentation: only our own modules are instrumented
import pydantic  # noqa: F401

with atheris.instrument_imports(include=["schemas"]):
    from schemas.deadletter import DeadLetter
    from schemas.gate import GateConfig, NodeGate, check_event
    from schemas.parse import parse_event

CFG = GateConfig()


def target(data: bytes) -> None:
    parsed = parse_event(data, "fuzz")
    if isinstance(parsed, DeadLetter):
        assert parsed.message, "a dead letter must say why"
        return
    check_event(NodeGate(gpus=8), parsed, parsed.time.timestamp(), CFG)


if __name__ == "__main__":
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
