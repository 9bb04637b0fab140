"""FastAGI inbound routing, with a fake Asterisk AGI client over a real socket."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from agent.telephony.agi import (
    AgiServer,
    InboundCall,
    InboundRoute,
    InboundRouter,
    StaticInboundRouter,
    quote,
)

HEADERS = {
    "agi_network_script": "inbound",
    "agi_request": "agi://127.0.0.1/inbound",
    "agi_channel": "PJSIP/trunk-00000001",
    "agi_uniqueid": "1732470000.12",
    "agi_callerid": "+15557654321",
    "agi_calleridname": "Pat",
    "agi_dnid": "+15550100000",
    "agi_extension": "s",
}


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
    assert not leaked


async def ask(port: int, headers: dict[str, str], answer: bytes = b"200 result=1\n") -> list[str]:
    """Plays Asterisk's side of one AGI() call; returns the commands Cartline sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n").encode())
    commands = []
    async with asyncio.timeout(5):
        while line := await reader.readline():
            commands.append(line.decode().rstrip("\n"))
            writer.write(answer)
            await writer.drain()
    writer.close()
    await writer.wait_closed()
    return commands


def variables(commands: list[str]) -> dict[str, str]:
    assert all(c.startswith("SET VARIABLE ") for c in commands), commands
    return dict(c.removeprefix("SET VARIABLE ").split(" ", 1) for c in commands)


async def serve(router: InboundRouter, **options: float) -> AgiServer:
    server = AgiServer("127.0.0.1", 0, router, **options)
    await server.start()
    assert server.port != 0
    return server


class Router:
    def __init__(self, route: InboundRoute | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[InboundCall] = []
        self.route_to = route or InboundRoute(
            campaign="winback", call_id="in-7", known_customer=True
        )
        self.delay_s = delay_s

    async def route(self, call: InboundCall) -> InboundRoute:
        self.calls.append(call)
        await asyncio.sleep(self.delay_s)
        return self.route_to


async def test_inbound_call_is_routed_by_caller_id() -> None:
    router = Router()
    server = await serve(router)
    try:
        commands = await ask(server.port, HEADERS)
    finally:
        await server.stop()
    assert router.calls == [
        InboundCall("+15557654321", "Pat", "+15550100000", "PJSIP/trunk-00000001", "1732470000.12")
    ]
    values = variables(commands)
    assert list(values) == [
        "CALL_ID",
        "AS_UUID",
        "CARTLINE_CAMPAIGN",
        "CARTLINE_KNOWN",
        "CARTLINE_ROUTE",
    ]
    assert values["CALL_ID"] == '"in-7"'
    assert values["AS_UUID"] == f'"{router.route_to.media_uuid}"'
    assert values["CARTLINE_CAMPAIGN"] == '"winback"'
    assert values["CARTLINE_KNOWN"] == '"yes"'
    assert values["CARTLINE_ROUTE"] == '"accept"'
    assert server.requests == 1 and server.failures == 0


async def test_rejected_and_unknown_callers() -> None:
    router = Router(InboundRoute(campaign=None, call_id="in-8", reject=True))
    server = await serve(router)
    headers = {**HEADERS, "agi_callerid": "unknown", "agi_calleridname": "unknown"}
    headers["agi_dnid"] = "unknown"
    try:
        values = variables(await ask(server.port, headers))
    finally:
        await server.stop()
    assert router.calls[0].caller_id == "" and router.calls[0].dialed == "s"
    assert values["CARTLINE_ROUTE"] == '"reject"' and values["CARTLINE_CAMPAIGN"] == '""'
    assert values["CARTLINE_KNOWN"] == '"no"'


class Broken:
    async def route(self, call: InboundCall) -> InboundRoute:
        raise RuntimeError(f"store unreachable while looking up {call.caller_id}")


@pytest.mark.parametrize("router", [Broken(), Router(delay_s=5.0)], ids=["error", "timeout"])
async def test_a_failing_router_gives_the_fallback_route(
    router: InboundRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.telephony.agi")
    server = await serve(router, route_timeout_s=0.1)
    try:
        values = variables(await ask(server.port, HEADERS))
    finally:
        await server.stop()
    assert values["CARTLINE_ROUTE"] == '"fallback"'
    assert values["CALL_ID"] == '"1732470000.12"'
    uuid.UUID(values["AS_UUID"].strip('"'))
    assert server.failures == 1
    assert "1732470000.12" in caplog.text and "5557654321" not in caplog.text


async def test_hangup_during_routing_stops_the_commands() -> None:
    server = await serve(Router())
    try:
        commands = await ask(server.port, HEADERS, answer=b"511 Command Not Permitted\n")
    finally:
        await server.stop()
    assert len(commands) == 1  # after a refused command, Cartline sends no more


async def test_bad_clients_do_not_harm_the_server() -> None:
    router = Router()
    server = await serve(router)
    try:
        # Closes halfway through the headers: must not stall the loop.
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: inbound\nagi_chan")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        assert await ask(server.port, {**HEADERS, "agi_network_script": "nope"}) == []
        assert variables(await ask(server.port, HEADERS))["CARTLINE_ROUTE"] == '"accept"'
    finally:
        await server.stop()
    assert len(router.calls) == 1


async def test_stop_ends_requests_in_progress() -> None:
    server = await serve(Router(delay_s=60.0), route_timeout_s=60.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(("".join(f"{k}: {v}\n" for k, v in HEADERS.items()) + "\n").encode())
    await writer.drain()
    await asyncio.sleep(0.05)
    async with asyncio.timeout(2):
        await server.stop()
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_static_router() -> None:
    route = await StaticInboundRouter("main").route(InboundCall("1", "", "2", "c", "u-1"))
    assert route.campaign == "main" and route.call_id == "u-1"
    assert not route.known_customer and not route.reject


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a\\b", '"a\\\\b"'),
        ("two\r\nlines", '"two  lines"'),
    ],
)
def test_quote(raw: str, quoted: str) -> None:
    assert quote(raw) == quoted
