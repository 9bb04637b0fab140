"""The OpenAPI document: valid OpenAPI 3.1, the same routes as the application, and true
to the server (fuzzed with schemathesis against a real server: no 5xx, every answer as
documented)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.definitions import OPENAPI_31

from agent.privacy.crypto import DataKeys
from agent.store.db import Database
from agent.web import accounts
from agent.web.access import Scope, needs
from agent.web.app import make_web_app
from agent.web.openapi import document
from tests.store.seed import TURNS, add_call, add_contact
from tests.web.conftest import Web, WebServed, web_settings


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            found.add((route.method.lower(), path))
    return found


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1() -> None:
    jsonschema_rs.Draft202012Validator(OPENAPI_31).validate(document())
    for name, schema in document()["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


async def test_every_api_route_is_documented_and_nothing_else(web: Web) -> None:
    assert _routes(web.client.app) == _documented()


async def test_each_route_declares_the_scope_the_document_names(web: Web) -> None:
    app = web.client.app
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/api/v1") or route.method == "HEAD":
            continue
        op = document()["paths"][path][route.method.lower()]
        need = needs(route.handler)
        if "x-scope" in op:
            assert need == frozenset({Scope(op["x-scope"])}), path
        else:  # this document, and the intake with its own token
            assert need == "public" and op["security"] in ([], [{"intake": []}]), path


async def test_the_document_is_served(web: Web) -> None:
    r = await web.client.get("/api/v1/openapi.json")
    assert r.status == 200
    assert await r.json() == document()


# -- fuzzing ------------------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    token: str


def _seed(db: Database, keys: DataKeys, folder: Path) -> None:
    def seed(s: Any) -> None:
        add_call(s, turns=TURNS, keys=keys, recording=folder / "x")
        other = add_contact(s, phone="+12125550999", email="sam@example.com", first_name="Sam")
        add_call(s, contact_id=other, campaign="winback", turns=TURNS)
        add_call(s, contact_id=other, status="no_answer", outcome=None)

    db.call(seed)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on 127.0.0.1, on its own loop in a thread, with a few calls seeded."""
    folder = tmp_path_factory.mktemp("fuzz")
    keys = DataKeys({"k1": bytes(range(32))}, "k1")
    db = Database(f"sqlite:///{folder / 'web.db'}")
    db.migrate()
    _seed(db, keys, folder)
    token = db.call(lambda s: accounts.add_token(s, "fuzz", list(Scope), created_by="test")).token
    loop = asyncio.new_event_loop()
    started: Future[tuple[web.AppRunner, int]] = Future()

    async def start() -> tuple[web.AppRunner, int]:
        settings_ = web_settings().model_copy(update={"state_dir": folder})
        app = make_web_app(WebServed(db, settings_, keys))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return runner, int(port)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(start()))
        except BaseException as exc:
            started.set_exception(exc)
            return
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    runner, port = started.result(timeout=30)
    try:
        yield Server(f"http://127.0.0.1:{port}", token)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        db.close()


SCHEMA = schemathesis.openapi.from_dict(document())


def _operations() -> list[Any]:
    found = []
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), result.err()
        found.append(result.ok())
    return found


OPERATIONS = _operations()


# These check what no schema can say (a phone number that exists, a customer on file, a
# byte range within the file), so a request the schema allows may rightly get a 4xx.
SEMANTIC = {
    "GET /api/v1/calls/{id}/recording",
    "POST /api/v1/do-not-call",
    "POST /api/v1/do-not-call/import",
    "POST /api/v1/exports",
    "POST /api/v1/erasures",
}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_the_server_answers_as_documented(server: Server, operation: Any) -> None:
    excluded = [positive_data_acceptance] if operation.label in SEMANTIC else []

    @given(case=operation.as_strategy(), ids=st.sampled_from([1, 2, 3]))
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any, ids: int) -> None:
        if case.path_parameters and "id" in case.path_parameters and ids == 1:
            case.path_parameters["id"] = ids  # now and then an id that exists
        response = case.call(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30,
        )
        assert response.status_code < 500, response.text
        case.validate_response(response, excluded_checks=excluded)

    fuzz()


@pytest.mark.parametrize(
    "operation",
    [op for op in OPERATIONS if op.label != "GET /api/v1/openapi.json"],  # takes nothing
    ids=lambda op: op.label,
)
def test_invalid_requests_are_refused_with_a_4xx(server: Server, operation: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        response = case.call(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30,
        )
        assert response.status_code < 500, response.text
        case.validate_response(response)

    fuzz()
