"""FastAGI inbound routing, with a fake Asterisk AGI client over a real socket."""

from __future__ import annotations

import asyncio

import pytest

from agent.telephony.agi import AgiServer, InboundCall, InboundRoute, StaticInboundRouter, quote


async def ask(port: int, headers: dict[str, str]) -> list[str]:
    """Plays Asterisk's side of one AGI() call; returns the commands Cartline sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n").encode())
    commands = []
    async with asyncio.timeout(5):
        while line := await reader.readline():
            commands.append(line.decode().rstrip("\n"))
            writer.write(b"200 result=1\n")
            await writer.drain()
    writer.close()
    await writer.wait_closed()
    return commands


HEADERS = {
    "agi_network_script": "inbound",
    "agi_channel": "PJSIP/trunk-00000001",
    "agi_uniqueid": "1732470000.12",
    "agi_callerid": "+15557654321",
    "agi_calleridname": "Pat",
    "agi_dnid": "+15550100000",
}


class Router:
    def __init__(self) -> None:
        self.calls: list[InboundCall] = []

    async def route(self, call: InboundCall) -> InboundRoute:
        self.calls.append(call)
        return InboundRoute(campaign="winback", call_id="in-7", known_customer=True)


async def test_inbound_call_is_routed_by_caller_id() -> None:
    router = Router()
    server = AgiServer("127.0.0.1", 0, router)
    await server.start()
    try:
        commands = await ask(server.port, HEADERS)
    finally:
        await server.stop()
    assert router.calls == [
        InboundCall("+15557654321", "Pat", "+15550100000", "PJSIP/trunk-00000001", "1732470000.12")
    ]
    values = dict(c.removeprefix("SET VARIABLE ").split(" ", 1) for c in commands)
    assert values["CALL_ID"] == '"in-7"'
    assert values["CARTLINE_CAMPAIGN"] == '"winback"'
    assert values["CARTLINE_KNOWN"] == '"yes"'
    assert values["CARTLINE_ROUTE"] == '"accept"'
    assert len(values["AS_UUID"]) == 38


async def test_a_failing_router_gives_the_fallback_route() -> None:
    class Broken:
        async def route(self, call: InboundCall) -> InboundRoute:
            raise RuntimeError("store unreachable")

    server = AgiServer("127.0.0.1", 0, Broken())
    await server.start()
    try:
        commands = await ask(server.port, HEADERS)
    finally:
        await server.stop()
    assert 'SET VARIABLE CARTLINE_ROUTE "fallback"' in commands
    assert server.failures == 1


async def test_static_router() -> None:
    route = await StaticInboundRouter("main").route(InboundCall("1", "", "2", "c", "u-1"))
    assert route.campaign == "main" and route.call_id == "u-1"


@pytest.mark.parametrize(
    ("raw", "quoted"), [("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("a\\b", '"a\\\\b"')]
)
def test_quote(raw: str, quoted: str) -> None:
    assert quote(raw) == quoted
