"""Committed JSON Schemas must match the models, and validate real recordings independently."""

from __future__ import annotations

import json

import jsonschema

from schemas.export import JSON_DIR, all_schemas, render
from tests.conftest import SAMPLE


def test_committed_json_schemas_match_the_models() -> None:
    expected = all_schemas()
    on_disk = {p.stem: p.read_text() for p in JSON_DIR.glob("*.json")}
    assert set(on_disk) == set(expected), "run `breakfix schema export` and commit schemas/json/"
    for name, schema in expected.items():
        assert on_disk[name] == render(schema), (
            f"schemas/json/{name}.json drifted: run `breakfix schema export`"
        )


def test_sample_recording_validates_with_an_independent_validator() -> None:
    schema = json.loads((JSON_DIR / "event.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = [json.loads(x) for x in SAMPLE.read_text().splitlines() if x.strip()]
    types = set()
    for obj in lines:
        validator.validate(obj)
        types.add(obj["type"])
    assert len(types) == 12
    bad = dict(lines[0], data={"pool": "p"})
    assert list(validator.iter_errors(bad)), "the schema must reject an inventory without rack/sku/gpus"
