"""The ``cartline`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.config import Settings, load_settings
from agent.errors import CartlineError, ConfigError
from agent.simulator.lab import pbx_login, simulator_login
from agent.telephony import asterisk
from agent.telephony.dialplan import (
    Instance,
    pbx_instance,
    render_pbx,
    render_simulator,
    simulator_instance,
)


def _targets(settings: Settings, which: str) -> list[tuple[Instance, asterisk.AmiLogin]]:
    out: list[tuple[Instance, asterisk.AmiLogin]] = []
    if which in ("pbx", "all"):
        out.append((pbx_instance(settings), pbx_login(settings)))
    if which in ("simulator", "all"):
        out.append((simulator_instance(settings), simulator_login(settings)))
    return out


def cmd_check_config(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else args.config
    try:
        load_settings(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{path or 'config.yaml'}: OK")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from agent.config_reference import reference

    text = reference()
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_asterisk(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    state = settings.state_dir
    if args.action == "render":
        if args.which in ("pbx", "all"):
            inst = render_pbx(settings)
            print(f"rendered {inst.name} into {inst.host(inst.etc_dir)}")
        if args.which in ("simulator", "all"):
            inst = render_simulator(settings)
            print(f"rendered {inst.name} into {inst.host(inst.etc_dir)}")
        return 0
    targets = _targets(settings, args.which)
    if args.action == "start":
        for instance, login in targets:
            if asterisk.read_pid(state, instance) is None:
                (render_pbx if instance.name == settings.asterisk.instance else render_simulator)(
                    settings
                )
            pid = asterisk.start(instance, state, login, settings.asterisk.start_timeout_s)
            print(f"{instance.name}: running (pid {pid}), AMI on {login.host}:{login.port}")
        return 0
    if args.action == "stop":
        for instance, _ in targets:
            stopped = asterisk.stop(instance, state, settings.asterisk.stop_timeout_s)
            print(f"{instance.name}: {'stopped' if stopped else 'was not running'}")
        return 0
    code = 0
    for instance, login in targets:
        st = asterisk.status(instance, state, login)
        if st.running:
            ami = "AMI ready" if st.ami_ready else "AMI not answering"
            print(f"{instance.name}: running (pid {st.pid}), {ami}")
        else:
            print(f"{instance.name}: not running")
            code = 3
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    return asyncio.run(_serve(settings, args.drain_s, args.hand_over))


async def _serve(settings: Settings, drain_s: float, hand_over: bool) -> int:
    from agent.app import Server
    from agent.campaigns.calling import opening_prompt
    from agent.speech.models import load_speech

    print("loading the speech models ...", flush=True)
    prompt = opening_prompt(settings.campaigns[0], settings.merchant)
    speech = await load_speech(settings.speech, prompt)
    server = Server(settings, speech)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    w = settings.web
    print(f"cartline: serving (web on http://{w.host}:{w.port}); Ctrl-C stops", flush=True)
    await stop.wait()
    then = "are handed to a person" if hand_over else "are cut and retried later"
    print(f"cartline: stopping; live calls have {drain_s:g} s to finish, then {then}", flush=True)
    await server.stop(drain_s=drain_s, hand_over=hand_over)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartline", description="Self-hosted AI voice agent for merchants, on Asterisk."
    )
    parser.add_argument(
        "-c", "--config", type=Path, default=None, help="config file (default: ./config.yaml)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check-config", help="validate a config file and list its problems")
    check.add_argument("path", nargs="?", help="config file (default: ./config.yaml)")
    check.set_defaults(func=cmd_check_config)

    ref = sub.add_parser(
        "config-reference", help="every config.yaml option, as Markdown (docs/config-reference.md)"
    )
    ref.add_argument("--out", type=Path, help="write it to this file (default: print it)")
    ref.set_defaults(func=cmd_config_reference)

    ast = sub.add_parser("asterisk", help="render, start, stop or inspect Cartline's Asterisk")
    ast.add_argument("action", choices=["render", "start", "stop", "status"])
    ast.add_argument(
        "--which",
        choices=["pbx", "simulator", "all"],
        default="pbx",
        help="Cartline's own Asterisk (pbx, the default), the customer simulator's, or both",
    )
    ast.set_defaults(func=cmd_asterisk)

    srv = sub.add_parser(
        "serve", help="run Cartline: calls, intake, the scheduler and the web server"
    )
    srv.add_argument(
        "--drain-s", type=float, default=60, help="seconds live calls may finish on shutdown"
    )
    srv.add_argument(
        "--hand-over",
        action="store_true",
        help="calls still live after the drain time go to their campaign's script.transfer_to "
        "(a person) instead of being cut",
    )
    srv.set_defaults(func=cmd_serve)

    from agent.campaigns.cli import add_commands as add_campaign_commands
    from agent.demo.cli import add_commands as add_demo_commands
    from agent.privacy.cli import add_commands as add_privacy_commands
    from agent.simulator.cli import add_commands as add_call_commands
    from agent.speech.cli import add_commands as add_model_commands
    from agent.web.cli import add_commands as add_user_commands

    add_campaign_commands(sub)
    add_privacy_commands(sub)
    add_call_commands(sub)
    add_demo_commands(sub)
    add_model_commands(sub)
    add_user_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 2:
        # panoramisk logs every request and reconnect attempt at INFO.
        logging.getLogger("panoramisk").setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except CartlineError as exc:
        print(f"cartline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
