"""gpu.sample's throttle_reasons: names, or the integer clock-event bitmask NVML and DCGM report
(nvidia-ml-py's nvmlClocksEventReason* bits), decoded to names by the contract itself."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from schemas.deadletter import DeadLetter
from schemas.events import GpuSample
from schemas.export import JSON_DIR
from streams.kafka.producer import build_event, check


def _event(reasons: Any) -> dict[str, Any]:
    return build_event("gpu.sample", "test", "n1", {"gpus": [{"index": 0, "throttle_reasons": reasons}]})


def test_the_bitmask_is_decoded_to_names_by_the_pipeline_gate() -> None:
    parsed = check(_event(0x68))
    assert isinstance(parsed, GpuSample)
    assert parsed.data.gpus[0].throttle_reasons == ["hw_slowdown", "sw_thermal", "hw_thermal"]
    names = check(_event(["hw_thermal"]))
    assert isinstance(names, GpuSample) and names.data.gpus[0].throttle_reasons == ["hw_thermal"]


def test_a_mask_no_gpu_can_report_is_refused_whole() -> None:
    for bad in (-1, True, "0x68"):
        assert isinstance(check(_event(bad)), DeadLetter), bad


def test_the_published_json_schema_accepts_both_forms() -> None:
    schema = json.loads((JSON_DIR / "event.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for ok in (0x68, ["hw_thermal"], []):
        validator.validate(json.loads(json.dumps(_event(ok), default=str)))
    assert list(validator.iter_errors(json.loads(json.dumps(_event(-1), default=str))))
