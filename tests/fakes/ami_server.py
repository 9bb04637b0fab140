"""A fake Asterisk AMI over real TCP that replays recorded conversations.

It speaks the AMI text protocol: the banner, Login (checking the secret and,
like Asterisk, closing the connection after a refused one), Ping, Command,
Getvar and the other actions; for an Originate to a number it knows it replays
a recording made from a real Asterisk, with the client's ActionID and ChannelId
put in place of the recorded ones. The replay goes out in one write, so many
events arrive in one read, as they do from Asterisk.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parents[1] / "telephony" / "recordings"
EOL = "\r\n"


def recorded_blocks(name: str) -> list[str]:
    """Every message of a recording, banner and login included."""
    text = (RECORDINGS / f"{name}.ami").read_bytes().decode()
    return [b.strip() for b in text.split(EOL + EOL) if b.strip()]


def recorded_messages(name: str) -> list[str]:
    """The messages of a recording after the login (banner and login response dropped)."""
    return [b for b in recorded_blocks(name) if "ActionID: login-1" not in b]


def recorded_banner(name: str = "answered") -> str:
    """The banner line Asterisk sent in a recording."""
    return recorded_blocks(name)[0].split(EOL, 1)[0]


def parse_block(block: str) -> dict[str, str]:
    """One message's fields (the first value of a repeated key)."""
    fields: dict[str, str] = {}
    for line in block.split(EOL):
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, value)
    return fields


class FakeAmi:
    """``scripts`` maps a dialled number to a recording name.

    ``held``: numbers whose replay stops after the "queued" response until
    :meth:`release`. ``silent``: action names left unanswered. ``variables``:
    what Getvar answers.
    """

    def __init__(self, secret: str = "secret", scripts: dict[str, str] | None = None) -> None:
        self.secret = secret
        self.scripts = scripts or {}
        self.banner = recorded_banner()
        self.held: set[str] = set()
        self.silent: set[str] = set()
        self.variables: dict[str, str] = {}
        self.port = 0
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self.failed_logins = 0
        self._released = asyncio.Event()
        self._received = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        # Closing the connections ends their tasks (cancelling them would make
        # asyncio's stream server log an error on Python 3.11).
        self.drop()
        self._released.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop(self, shutdown: bool = False) -> None:
        """Closes every client connection, optionally announcing a shutdown first."""
        for writer in self._writers:
            if shutdown:
                _write(
                    writer,
                    "Event: Shutdown",
                    "Privilege: system,all",
                    "Shutdown: Cleanly",
                    "Restart: True",
                )
            writer.close()
        self._writers.clear()

    def send(self, *lines: str) -> None:
        """Sends one message, made of ``lines``, to every client."""
        for writer in self._writers:
            _write(writer, *lines)

    def release(self) -> None:
        """Lets held replays go on."""
        self._released.set()

    async def wait_actions(self, count: int) -> None:
        """Waits until ``count`` actions in all have been received."""
        while len(self.actions) < count:
            self._received.clear()
            await self._received.wait()

    def named(self, action: str) -> list[dict[str, str]]:
        """The actions received with that name (keys in lower case)."""
        return [a for a in self.actions if a.get("action", "").lower() == action.lower()]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        writer.write(f"{self.banner}{EOL}".encode())
        try:
            while not writer.is_closing():
                raw = await reader.readuntil((EOL + EOL).encode())
                action: dict[str, str] = {}
                for line in raw.decode().split(EOL):
                    key, sep, value = line.partition(": ")
                    if not sep:
                        continue
                    key = key.lower()
                    # Repeated keys (Variable) are kept in one value, one per line.
                    action[key] = f"{action[key]}\n{value}" if key in action else value
                self.actions.append(action)
                self._received.set()
                await self._answer(action, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        name = action.get("action", "").lower()
        aid = f"ActionID: {action.get('actionid', '')}"
        if name in self.silent:
            return
        if name == "login":
            if action.get("secret") == self.secret:
                self.logins += 1
                _write(writer, "Response: Success", aid, "Message: Authentication accepted")
                _write(
                    writer, "Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted"
                )
            else:
                # Asterisk closes the connection after a refused login.
                self.failed_logins += 1
                _write(writer, "Response: Error", aid, "Message: Authentication failed")
                writer.close()
        elif name == "originate":
            await self._originate(action, aid, writer)
        elif name == "command":
            output = ["Output: 0 active channels", "Output: 0 active calls"]
            _write(writer, "Response: Success", aid, "Message: Command output follows", *output)
        elif name == "getvar":
            value = self.variables.get(action.get("variable", ""), "")
            variable = f"Variable: {action.get('variable', '')}"
            _write(writer, "Response: Success", aid, variable, f"Value: {value}")
        elif name in ("hangup", "redirect", "setvar") and action.get("channel") == "gone":
            _write(writer, "Response: Error", aid, "Message: No such channel")
        else:
            _write(writer, "Response: Success", aid)
        await writer.drain()

    async def _originate(
        self, action: dict[str, str], aid: str, writer: asyncio.StreamWriter
    ) -> None:
        number = re.sub(r"^PJSIP/([^@]+)@.*$", r"\1", action.get("channel", ""))
        script = self.scripts.get(number)
        if script is None:
            _write(writer, "Response: Error", aid, "Message: Originate failed")
            return
        call_id = action.get("channelid", "")
        blocks = [
            block.replace("ActionID: orig-1", aid).replace(f"rec-{script}", call_id)
            for block in recorded_messages(script)
        ]
        if number in self.held:
            queued = next(i for i, b in enumerate(blocks) if "successfully queued" in b)
            writer.write(_joined(blocks[: queued + 1]))
            await writer.drain()
            await self._released.wait()
            blocks = blocks[queued + 1 :]
        writer.write(_joined(blocks))


def _joined(blocks: list[str]) -> bytes:
    return "".join(block + EOL + EOL for block in blocks).encode()


def _write(writer: asyncio.StreamWriter, *lines: str) -> None:
    writer.write((EOL.join(lines) + EOL + EOL).encode())
