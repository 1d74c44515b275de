"""Property test against the server's own OpenAPI document (`GET /openapi.json`): schemathesis generates
requests for every operation, with and without valid credentials; no reply is a 5xx, every reply has a
documented status, content type and body, and afterwards the ledger still answers.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from ledger import IdentityLedger
from ledger.server import changes_api
from ledger.server.app import create_app
from tests.server_helpers import API_KEY, SECRET_KEY, basic

#: Bounded so that the whole suite stays quick; raise it locally to fuzz harder.
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CREDENTIALS = basic(API_KEY, SECRET_KEY)


def _exercise(operation: APIOperation[Any, Any, Any, Any]) -> None:
    """Every generated request, once with valid credentials and once without, must pass every check."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def one_case(case: Any) -> None:
        for headers in (CREDENTIALS, {}):
            case.headers = {key: value for key, value in (case.headers or {}).items()
                            if key.lower() != "authorization"} | headers
            case.call_and_validate(checks=CHECKS)

    one_case()


def test_every_operation_keeps_to_the_document(lg: IdentityLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process over ASGI: schemathesis reads the document the app serves, as a client would."""
    monkeypatch.setattr(changes_api, "MAX_WAIT", 0)  # no example long-polls an empty ledger for a minute
    app = create_app(lg, [API_KEY], SECRET_KEY)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # the document itself is valid
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) > 10
    for operation in operations:
        _exercise(operation)
    assert schema["/healthz"]["GET"].Case().call().json() == {"code": 200, "status": "ok"}
