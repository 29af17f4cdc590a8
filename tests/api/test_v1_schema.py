"""schemathesis against the live ``/openapi.json`` of a real server: for every ``/v1``
operation a bounded number of generated requests (valid and invalid ones), sent with an
admin token; none may get a 5xx, and every response must conform to the operation's
documented status codes, content types and schemas."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

#: Every operation of the native API: runs, events, flows, dead letters and status models.
MINE = "^/v1/(runs|flows|deadletters|models)"
#: Generated requests per operation and generation mode.
EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(url: str, headers: dict[str, str]) -> list[str]:
    """Run every operation's examples; the operations checked."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json").include(path_regex=MINE)
    checked = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy: SearchStrategy[Case[Any]] = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Case[Any]) -> None:
                case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=10)

            try:
                check()
            except Unsatisfiable:  # no invalid input exists (an operation without parameters)
                assert mode is GenerationMode.NEGATIVE
        checked.append(f"{operation.method.upper()} {operation.path}")
    return checked


async def test_every_operation_conforms_to_its_schema(api: ApiServer) -> None:
    checked = await asyncio.to_thread(_fuzz, api.url, api.headers(Scope.admin))
    assert len(checked) == 19
