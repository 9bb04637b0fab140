"""``cartline demo``: sets up what is missing, runs the demo campaign, keeps the dashboard up."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from agent.config import LlamaSettings, Settings, load_settings
from agent.demo.customers import CUSTOMERS, cast
from agent.demo.run import DemoOptions, run_demo
from agent.demo.settings import demo_settings
from agent.errors import CartlineError
from agent.progress import ProgressBar
from agent.simulator.cli import ensure_running
from agent.speech import weights
from agent.telephony import asterisk


def add_commands(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the recovery campaign for real against a dozen simulated customers",
        description="Starts Asterisk and the customer simulator if they are not running, "
        "loads the speech models, and runs the recovery campaign through the real Asterisk "
        "against the demo store's customers: "
        + "; ".join(f"{c.key}: {c.behaviour}" for c in CUSTOMERS)
        + ". Then the dashboard stays up until Ctrl-C.",
    )
    demo.add_argument(
        "--short", action="store_true", help="only the shortened cast (the one CI runs)"
    )
    demo.add_argument(
        "--customers", help="only these customers, comma-separated keys (e.g. maya,priya)"
    )
    demo.add_argument(
        "--exit", action="store_true", help="stop when the campaign has settled (no dashboard)"
    )
    demo.add_argument(
        "--timeout-min", type=float, default=15.0, help="give up waiting after this long"
    )
    demo.add_argument("--json-out", type=Path, help="also write the summary as JSON here")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    only = tuple(k.strip() for k in (args.customers or "").split(",") if k.strip())
    try:
        chosen = cast(args.short, only)
    except ValueError as exc:
        raise CartlineError(str(exc)) from None
    settings = demo_settings(load_settings(args.config), secrets.token_hex(16))
    options = DemoOptions(
        cast=chosen,
        exit_when_done=args.exit,
        timeout_s=args.timeout_min * 60,
        json_out=args.json_out,
    )
    print(f"[1/4] Asterisk: Cartline's and the customer simulator's ({settings.asterisk.root})")
    started = ensure_running(settings)
    try:
        return asyncio.run(_main(settings, options))
    finally:
        for instance, name in reversed(started):
            asterisk.stop(instance, settings.state_dir, settings.asterisk.stop_timeout_s)
            print(f"stopped Asterisk {name}")


async def _main(settings: Settings, options: DemoOptions) -> int:
    from agent.campaigns.calling import opening_prompt
    from agent.speech.models import load_speech

    llm = settings.speech.llm
    if isinstance(llm, LlamaSettings) and llm.model == weights.PACKAGED:
        print("[2/4] the packaged LLM (joined once, checked)")
        await asyncio.to_thread(
            weights.prepare_llm,
            settings.speech.models_dir,
            ProgressBar("joining the LLM's 22 parts"),
        )
    print("[3/4] loading and warming the speech models (Whisper, the LLM, Piper) ...", flush=True)
    began = time.monotonic()
    prompt = opening_prompt(settings.campaigns[0], settings.merchant)
    speech = await load_speech(settings.speech, prompt)
    print(f"      ready in {time.monotonic() - began:.0f} s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    web = settings.web
    print(f"[4/4] the server (what `cartline serve` runs), web on http://{web.host}:{web.port}/")
    summary = await run_demo(settings, speech, options, stop)
    return 0 if summary.all_as_expected and summary.settled else 1
