"""``cartline demo``: the recovery campaign, for real, against a dozen simulated customers.

It runs what ``cartline serve`` runs (the AMI controller, AudioSocket and
FastAGI, the conversations with the local models, the intake, the scheduler,
the web server) in one process with the customer simulator, on the demo's
settings (agent.demo.settings). The demo store sends its abandoned checkouts as
signed webhooks; the scheduler calls each customer through the real Asterisk
pair; a customer who got the link by text "buys", and the store's order webhook
credits the revenue to the call. The terminal follows the calls, then sums up;
the dashboard stays up until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from agent.app import Server
from agent.campaigns.placement import CallResult
from agent.config import Settings
from agent.demo import customers as demo_customers
from agent.demo.customers import STORE_TEAM, STORE_TEAM_LINE, DemoCustomer
from agent.demo.settings import demo_dir
from agent.demo.shop import DemoShop, checkout_event, order_event
from agent.demo.summary import Summary, read_summary
from agent.demo.view import DemoView, print_summary
from agent.errors import CartlineError
from agent.simulator.customer import CustomerSimulator
from agent.simulator.scenario import Pause, Say, Scenario
from agent.speech.models import Speech
from agent.web import accounts
from agent.web.access import Role

DEMO_EMAIL = "demo@shop.example"


@dataclass(frozen=True)
class DemoOptions:
    cast: tuple[DemoCustomer, ...]
    # Stop as soon as the campaign has settled (the CI run); otherwise keep the dashboard up.
    exit_when_done: bool = False
    timeout_s: float = 900.0
    json_out: Path | None = None


class Demo:
    """One demo run: the server, the simulator, the store and the terminal view."""

    def __init__(self, settings: Settings, speech: Speech, options: DemoOptions) -> None:
        self.settings = settings
        self.speech = speech
        self.options = options
        self.by_phone = {c.phone: c for c in options.cast}
        self.server = Server(settings, speech)
        self.view = DemoView(self.by_phone, on_ended=self._call_ended)
        self.server.placer.observers.append(self.view)
        self.simulator = CustomerSimulator(
            settings.simulator, cache_dir=demo_dir(settings) / "voice"
        )
        web = settings.web
        self.base_url = f"http://{web.host}:{web.port}"
        secret = settings.intake.generic_secret
        assert secret is not None
        self.shop = DemoShop(self.base_url, secret.get_secret_value())
        self.ordered: set[str] = set()
        self._orders: set[asyncio.Task[None]] = set()
        self.password = secrets.token_urlsafe(12)

    async def start(self) -> None:
        try:
            await self.server.start()
        except OSError as exc:
            raise CartlineError(
                f"could not start the server ({exc.strerror or exc}): is `cartline serve` "
                "running on this machine? Stop it first, or give the demo other ports in "
                "config.yaml (web.port, audiosocket.port, fastagi.port)"
            ) from exc
        await self.simulator.start()
        await self.server.db.run(
            lambda s: accounts.add_user(s, DEMO_EMAIL, self.password, Role.OWNER, name="Demo")
        )

    async def stop(self) -> None:
        for task in self._orders:
            task.cancel()
        await self.server.stop(drain_s=5)
        await self.simulator.stop()

    async def prepare_customers(self) -> None:
        """Gives every customer's phone its behaviour, lines spoken in the Piper voice."""
        book = self.simulator.book
        for customer in self.options.cast:
            phones = await demo_customers.scenarios(customer, self.speech.render)
            if phones:
                book.add_sequence(customer.phone, *phones)
        team = await self.speech.render(STORE_TEAM_LINE)
        book.add(STORE_TEAM, Scenario(steps=(Say(pcm=team), Pause(20.0)), name="store-team"))

    async def send_checkouts(self) -> None:
        campaign = self.settings.campaigns[0].name
        now = dt.datetime.now(dt.UTC)
        for customer in self.options.cast:
            await self.shop.send(checkout_event(customer, now, campaign))
            self.view.say("store", f"abandoned checkout: {customer.name}, {customer.total} USD")

    def _call_ended(self, customer: DemoCustomer, result: CallResult) -> None:
        texted = any(
            m.to.lstrip("+") == customer.phone.lstrip("+") for m in self.simulator.messages
        )
        if customer.buys_after_text and texted and customer.key not in self.ordered:
            self.ordered.add(customer.key)
            task = asyncio.create_task(self._buy(customer))
            self._orders.add(task)
            task.add_done_callback(self._orders.discard)

    async def _buy(self, customer: DemoCustomer) -> None:
        # The customer opens the texted link and pays a little later.
        await asyncio.sleep(2.0)
        await self.shop.send(order_event(customer, dt.datetime.now(dt.UTC)))
        self.view.say("store", f"order: {customer.name} paid {customer.total} USD")

    async def summary(self) -> Summary:
        cast = self.options.cast
        phones = {c.key: c.phone for c in cast}
        return await self.server.db.run(lambda s: read_summary(s, cast, phones, self.ordered))

    async def wait_settled(self, stop: asyncio.Event) -> Summary:
        """Until every customer has settled, the time is up, or ``stop`` is set."""
        deadline = time.monotonic() + self.options.timeout_s
        while True:
            summary = await self.summary()
            if summary.settled or stop.is_set() or time.monotonic() > deadline:
                return summary
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def run_demo(
    settings: Settings, speech: Speech, options: DemoOptions, stop: asyncio.Event
) -> Summary:
    """Runs the demo campaign to its end; with ``exit_when_done`` false, then waits for ``stop``."""
    fresh(settings)
    demo = Demo(settings, speech, options)
    await demo.start()
    try:
        await demo.prepare_customers()
        print(f"the store sends {len(options.cast)} abandoned checkouts\n", flush=True)
        await demo.send_checkouts()
        summary = await demo.wait_settled(stop)
        # Lets the last webhooks and outcomes land before the final read.
        await asyncio.sleep(1.0)
        summary = await demo.summary()
        print_summary(summary)
        if options.json_out is not None:
            options.json_out.write_text(json.dumps(summary.as_json(), indent=2) + "\n")
        if not options.exit_when_done and not stop.is_set():
            print(
                f"\nThe dashboard: {demo.base_url}/  sign in as {DEMO_EMAIL} with the password "
                f"{demo.password}\n(the demo's own sign-in: no second factor, this machine only). "
                "Ctrl-C stops everything the demo started.",
                flush=True,
            )
            await stop.wait()
        return summary
    finally:
        print("stopping ...", flush=True)
        await demo.stop()


def fresh(settings: Settings) -> None:
    """Removes the last run's demo database, so every run starts from an empty store."""
    folder = demo_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("cartline.db", "cartline.db-wal", "cartline.db-shm"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "exports", ignore_errors=True)
