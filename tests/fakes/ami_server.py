"""A fake Asterisk AMI over real TCP that replays recorded conversations.

It answers Login (checking the secret), Ping, Command and Originate; for an
Originate to a number it knows, it replays a recording made from a real
Asterisk, with the client's ActionID and ChannelId put in place of the ones
recorded. Several events go out in one write, as Asterisk does.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parents[1] / "telephony" / "recordings"
EOL = "\r\n"


def recorded_messages(name: str) -> list[str]:
    """The messages of a recording after the login (banner and login response dropped)."""
    text = (RECORDINGS / f"{name}.ami").read_bytes().decode()
    blocks = [b for b in text.split(EOL + EOL) if b.strip()]
    return [b.strip() for b in blocks if "ActionID: login-1" not in b and "Asterisk Call" not in b]


class FakeAmi:
    """``scripts`` maps a dialled number to a recording name."""

    def __init__(self, secret: str = "secret", scripts: dict[str, str] | None = None) -> None:
        self.secret = secret
        self.scripts = scripts or {}
        self.port = 0
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop(self, shutdown: bool = False) -> None:
        """Closes every client connection, optionally saying Asterisk shuts down first."""
        for writer in self._writers:
            if shutdown:
                writer.write(
                    f"Event: Shutdown{EOL}Shutdown: Cleanly{EOL}Restart: True{EOL}{EOL}".encode()
                )
            writer.close()
        self._writers.clear()

    def send(self, block: str) -> None:
        for writer in self._writers:
            writer.write((block.strip() + EOL + EOL).encode())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._writers.append(writer)
        writer.write(f"Asterisk Call Manager/11.0.0{EOL}".encode())
        try:
            while True:
                raw = await reader.readuntil((EOL + EOL).encode())
                action: dict[str, str] = {}
                for line in raw.decode().split(EOL):
                    if ": " in line:
                        key, value = line.split(": ", 1)
                        action[key.lower()] = value
                self.actions.append(action)
                await self._answer(action, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        name = action.get("action", "").lower()
        aid = f"ActionID: {action.get('actionid', '')}"
        if name == "login":
            if action.get("secret") == self.secret:
                self.logins += 1
                _write(writer, "Response: Success", aid, "Message: Authentication accepted")
                _write(
                    writer, "Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted"
                )
            else:
                _write(writer, "Response: Error", aid, "Message: Authentication failed")
        elif name == "originate":
            number = re.sub(r"^PJSIP/([^@]+)@.*$", r"\1", action.get("channel", ""))
            script = self.scripts.get(number)
            if script is None:
                _write(writer, "Response: Error", aid, "Message: Originate failed")
                return
            call_id = action.get("channelid", "")
            out = [
                block.replace("ActionID: orig-1", aid).replace(f"rec-{script}", call_id)
                for block in recorded_messages(script)
            ]
            writer.write(((EOL + EOL).join(out) + EOL + EOL).encode())
        elif name == "command":
            _write(
                writer,
                "Response: Success",
                aid,
                "Message: Command output follows",
                "Output: 0 active channels",
                "Output: 0 active calls",
            )
        else:
            _write(writer, "Response: Success", aid)
        await writer.drain()


def _write(writer: asyncio.StreamWriter, *lines: str) -> None:
    writer.write((EOL.join(lines) + EOL + EOL).encode())
