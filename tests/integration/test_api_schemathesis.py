"""Property-based check of the served OpenAPI document (schemathesis): for generated requests to
every operation - valid ones and, separately, invalid ones - sent with an admin token, the API never
answers 5xx and every answer matches the response schema the document declares. Bounded (a few
examples per operation and mode) so the whole run stays well under a minute.

Driven through schemathesis' Python API with hypothesis directly (its pytest plugin does not load
on this pytest version)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.fixtures import api as fx
from tests.fixtures.api import ApiServer

pytestmark = pytest.mark.integration
api_server = fx.api_server  # the shared fixture, registered in this module
EXAMPLES = 6


def run_operation(op: Any, mode: GenerationMode, api: ApiServer) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=api.url,
            headers=api.headers("admin"),
            checks=[not_a_server_error, response_schema_conformance],
        )

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_error_and_responses_match_the_schema(api_server: ApiServer, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(api_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 26  # every route of the contract, plus /healthz
    failures: list[str] = []
    for op in operations:
        try:
            run_operation(op, mode, api_server)
        except Exception as err:  # collect them all, so one run shows every broken operation
            failures.append(f"{op.label}: {str(err)[:800]}")
    assert not failures, "\n\n".join(failures)
