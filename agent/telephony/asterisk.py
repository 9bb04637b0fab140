"""Runs an Asterisk instance as a child process of its own: start, stop, status.

The process is tracked by PID (written to Cartline's state folder) and stopped
by that PID, never by name, so other Asterisk processes on the machine are safe.
Start-up is complete when the AMI accepts a login and Asterisk is fully booted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AsteriskError
from agent.telephony.dialplan import Instance

log = logging.getLogger(__name__)

# Asterisk processes this process started, kept so they are reaped when stopped.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class AmiLogin:
    """What the start-up check needs to log in to the instance's AMI."""

    host: str
    port: int
    username: str
    secret: str


@dataclass(frozen=True)
class Status:
    """What ``cartline asterisk status`` reports about an instance."""

    running: bool
    pid: int | None
    ami_ready: bool


def pid_file(state_dir: Path, instance: Instance) -> Path:
    return state_dir / "run" / f"asterisk-{instance.name}.pid"


def console_log(state_dir: Path, instance: Instance) -> Path:
    return state_dir / "log" / f"asterisk-{instance.name}.console.log"


def command_line(instance: Instance) -> list[str]:
    """The argv that starts the instance in the foreground, without a console."""
    args = [instance.binary, "-f", "-n", "-C", str(instance.config_file)]
    if instance.run_as and os.geteuid() == 0:
        args[1:1] = ["-U", instance.run_as, "-G", instance.run_as]
    if instance.chrooted:
        return ["chroot", str(instance.root), *args]
    return args


def cli_command_line(instance: Instance, command: str) -> list[str]:
    """The argv that runs one CLI command on the running instance."""
    args = [instance.binary, "-C", str(instance.config_file), "-rx", command]
    return ["chroot", str(instance.root), *args] if instance.chrooted else args


def _alive(pid: int, instance: Instance) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # A PID may be reused after a crash: only our Asterisk with our config counts.
    return any(part.endswith(b"asterisk") for part in cmdline) and (
        str(instance.config_file).encode() in cmdline
    )


def read_pid(state_dir: Path, instance: Instance) -> int | None:
    try:
        pid = int(pid_file(state_dir, instance).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, instance) else None


def ami_login_ok(login: AmiLogin, timeout_s: float = 2.0, *, need_booted: bool = True) -> bool:
    """True when the AMI answers a login (and, if asked, reports FullyBooted)."""
    try:
        with socket.create_connection((login.host, login.port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            stream = sock.makefile("rwb")
            banner = stream.readline()
            if not banner.startswith(b"Asterisk Call Manager"):
                return False
            stream.write(
                (
                    f"Action: Login\r\nActionID: probe\r\nUsername: {login.username}\r\n"
                    f"Secret: {login.secret}\r\nEvents: system\r\n\r\n"
                ).encode()
            )
            stream.flush()
            logged_in = False
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                line = stream.readline()
                if not line:
                    return False
                text = line.decode(errors="replace").strip()
                if text == "Response: Success":
                    logged_in = True
                    if not need_booted:
                        return True
                elif text == "Response: Error":
                    raise AsteriskError(
                        f"the AMI on {login.host}:{login.port} refused the login of "
                        f"{login.username!r}: check ami.username and ami.secret"
                    )
                elif logged_in and text == "Event: FullyBooted":
                    return True
            return False
    except (OSError, TimeoutError):
        return False


def start(instance: Instance, state_dir: Path, login: AmiLogin, timeout_s: float = 15.0) -> int:
    """Starts the instance unless it runs already; returns its PID once AMI is ready."""
    running = read_pid(state_dir, instance)
    if running is not None:
        log.info("Asterisk %s is already running (pid %d)", instance.name, running)
        if not _wait_ready(login, timeout_s, running, instance):
            raise AsteriskError(f"Asterisk {instance.name} runs but its AMI does not answer")
        return running
    if not Path(instance.host(instance.config_file)).exists():
        raise AsteriskError(f"no configuration for {instance.name}: run `cartline asterisk render`")
    binary = instance.host(Path(instance.binary)) if instance.chrooted else Path(instance.binary)
    if not binary.exists():
        raise AsteriskError(
            f"Asterisk is not installed at {binary}; run scripts/install-asterisk "
            "(or set asterisk.root and asterisk.binary in config.yaml)"
        )
    if ami_login_ok(login, 0.5, need_booted=False):
        raise AsteriskError(
            f"another Asterisk already answers on AMI port {login.port}; stop it or "
            "change ami.port in config.yaml"
        )
    log_path = console_log(state_dir, instance)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path = pid_file(state_dir, instance)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as console:
        process = subprocess.Popen(
            command_line(instance),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # chroot exec()s Asterisk, so this is Asterisk's own PID.
    _children[process.pid] = process
    pid_path.write_text(f"{process.pid}\n")
    try:
        ready = _wait_ready(login, timeout_s, process.pid, instance, process)
    except AsteriskError:
        stop(instance, state_dir)
        raise
    if not ready:
        stop(instance, state_dir)
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise AsteriskError(
            f"Asterisk {instance.name} did not become ready in {timeout_s:.0f} s; "
            f"last lines of {log_path}:\n" + "\n".join(tail)
        )
    log.info("Asterisk %s started (pid %d)", instance.name, process.pid)
    return process.pid


def _wait_ready(
    login: AmiLogin,
    timeout_s: float,
    pid: int,
    instance: Instance,
    process: subprocess.Popen[bytes] | None = None,
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        if process is None and not _alive(pid, instance):
            return False
        if ami_login_ok(login, 1.0):
            return True
        time.sleep(0.05)
    return False


def stop(instance: Instance, state_dir: Path, timeout_s: float = 10.0) -> bool:
    """Stops the instance by its PID: SIGTERM (recordings close), SIGKILL after timeout_s."""
    pid = read_pid(state_dir, instance)
    path = pid_file(state_dir, instance)
    if pid is None:
        path.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid, instance):
            break
        _reap(pid)
        time.sleep(0.05)
    else:
        log.warning("Asterisk %s did not stop in %.0f s; killing it", instance.name, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    _reap(pid)
    path.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # When this process started Asterisk, collect it so it leaves no zombie.
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def status(instance: Instance, state_dir: Path, login: AmiLogin) -> Status:
    pid = read_pid(state_dir, instance)
    ready = pid is not None and ami_login_ok(login, 1.0)
    return Status(running=pid is not None, pid=pid, ami_ready=ready)


def run_cli(instance: Instance, command: str, timeout_s: float = 10.0) -> str:
    """Runs one Asterisk CLI command on the running instance and returns its output."""
    done = subprocess.run(
        cli_command_line(instance, command),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise AsteriskError(f"asterisk -rx {command!r} failed: {done.stderr.strip()}")
    return done.stdout
