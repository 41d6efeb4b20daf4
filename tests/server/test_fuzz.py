"""schemathesis against the app's own OpenAPI schema on a real server: no generated request gets a 500.

Every operation of the schema gets valid (positive) and invalid (negative) cases, EXAMPLES of each,
derandomized so that a failure reproduces: about 200 requests in all. They carry a user's API key,
so admin operations answer 401 (no model reload, no training). schemathesis' pytest plugin does not
run under pytest 9 (it sets a node attribute pytest removed), so the operations are driven with
Hypothesis directly, which is what the plugin does.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.server.conftest import API_KEY

EXAMPLES = 8  # per operation and generation mode


def test_no_generated_request_gets_a_500(server):
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/complete", "/v1/completions", "/v1/model/reload", "/readyz"}
    sent = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def no_500(case):
                response = case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"},
                                                  checks=[not_a_server_error], timeout=60)
                sent.append(response.status_code)

            try:
                no_500()
            except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE
    assert len(sent) >= 100 and all(code < 500 or code in (503, 504) for code in sent)
