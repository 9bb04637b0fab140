"""The dashboard in a real browser: Debian's Chromium, headless, against a real server.

An owner signs in for the first time, enrols the second factor, signs out and in
again with a code, reads the overview, plays a call's recording, watches a live call
and pauses a campaign. Each page is saved as a screenshot under
``$CARTLINE_ARTIFACTS/dashboard`` (``build/artifacts`` by default). The page's own
scripts run under the real Content-Security-Policy: any violation fails the test.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import struct
import wave
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from aiohttp import web
from sqlmodel import Session

from agent.campaigns.placement import CallRequest
from agent.conversation.events import Said, TurnTimings
from agent.privacy.crypto import RECORDING_CONTEXT, DataKeys
from agent.store import repository as repo
from agent.store.db import Database
from agent.store.tables import Recording
from agent.web import accounts
from agent.web.access import Role
from agent.web.app import make_web_app
from agent.web.live import LiveCalls
from tests.store.seed import TURNS, add_call, add_contact
from tests.web.conftest import PASSWORD, WebServed, web_settings

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
EMAIL = "owner@shop.example"
SHOTS = Path(os.environ.get("CARTLINE_ARTIFACTS", "build/artifacts")) / "dashboard"


def tone_wav(seconds: float = 1.5, rate: int = 8000) -> bytes:
    """A real telephone-rate WAV: a 440 Hz tone, 16-bit mono."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = int(seconds * rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(frames)
            )
        )
    return out.getvalue()


class Site:
    def __init__(self, url: str, db: Database, live: LiveCalls, attempt_id: int) -> None:
        self.url = url
        self.db = db
        self.live = live
        self.attempt_id = attempt_id


@pytest.fixture
async def site(tmp_path: Path, data_keys: DataKeys) -> AsyncIterator[Site]:
    db = Database(f"sqlite:///{tmp_path / 'browser.db'}")
    db.migrate()
    sealed = tmp_path / "call.wav.enc"
    sealed.write_bytes(data_keys.seal(tone_wav(), RECORDING_CONTEXT))
    now = dt.datetime.now(dt.UTC)

    def seed(s: Session) -> int:
        accounts.add_user(s, EMAIL, PASSWORD, Role.OWNER, name="Owner")
        contact = add_contact(s)
        call = add_call(
            s,
            contact_id=contact,
            started_at=now - dt.timedelta(hours=2),
            turns=TURNS,
            keys=data_keys,
            attributed=Decimal("120.00"),
        )
        s.add(
            Recording(
                attempt_id=call.attempt_id,
                path=str(sealed),
                size_bytes=sealed.stat().st_size,
                created_at=now,
            )
        )
        return call.attempt_id

    attempt_id = await db.run(seed)
    live = LiveCalls()
    app = make_web_app(WebServed(db, web_settings(), data_keys), live=live)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Site(f"http://{host}:{port}", db, live, attempt_id)
    finally:
        await runner.cleanup()
        db.close()


async def test_an_owner_signs_in_plays_a_call_and_pauses_a_campaign(site: Site) -> None:
    from playwright.async_api import FilePayload, Page, async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    async def shot(page: Page, name: str) -> None:
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    async def sign_in(page: Page) -> None:
        await page.fill("input[name=email]", EMAIL)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("main button[type=submit]")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

        # First sign-in: the password, then enrolment of the second factor.
        await page.goto(site.url + "/")
        assert "/login" in page.url
        await shot(page, "01-sign-in")
        await sign_in(page)
        await page.wait_for_url("**/login/mfa**")
        secret = (await page.text_content("#totp-secret") or "").strip()
        assert len(secret) == 32
        await shot(page, "02-enrol")
        await page.fill("input[name=code]", pyotp.TOTP(secret).now())
        await page.click("main button[type=submit]")
        await expect(page.locator("#recovery-codes li")).to_have_count(10)
        await shot(page, "03-recovery-codes")

        # Out, and in again with a code from the authenticator.
        await page.click("form.signout button")
        await page.wait_for_url("**/login")
        await sign_in(page)
        await page.wait_for_url("**/login/mfa**")
        await page.fill("input[name=code]", pyotp.TOTP(secret).now())
        await page.click("main button[type=submit]")
        await page.wait_for_url(site.url + "/")

        # The overview.
        await expect(page.locator("#revenue")).to_contain_text("120.00 USD")
        await expect(page.locator("svg.chart rect.bar-calls")).to_have_count(30)
        await shot(page, "04-overview")

        # The calls, a call, its recording.
        await page.click("nav >> text=Calls")
        await expect(page.locator(f'a[href="/calls/{site.attempt_id}"]')).to_be_visible()
        await shot(page, "05-calls")
        await page.click(f'a[href="/calls/{site.attempt_id}"]')
        await expect(page.locator("#transcript")).to_contain_text("I meant to finish that")
        audio = page.locator("audio#recording")
        await audio.evaluate("a => { a.preload = 'auto'; a.play().catch(() => {}); }")
        await page.wait_for_function(
            "() => { const a = document.querySelector('audio#recording');"
            " return a.error !== null || a.currentTime > 0 || a.readyState >= 2; }",
            timeout=10_000,
        )
        state = await audio.evaluate(
            "a => ({error: a.error && a.error.code, time: a.currentTime, ready: a.readyState,"
            " duration: a.duration})"
        )
        assert state["error"] is None, state
        assert state["time"] > 0 or state["ready"] >= 2, state
        assert abs(state["duration"] - 1.5) < 0.1, state
        await shot(page, "06-call")

        # A live call, as it happens.
        await page.click("nav >> text=Live")
        await expect(page.locator("#live-status")).to_have_text("live")
        request = CallRequest(
            attempt_id=9001, job_id=1, campaign="recovery", phone_e164="+12125550199",
            checkout_id=1, first_name="Kim", items=[], total="80.00", currency="USD",
            checkout_url=None,
        )  # fmt: skip
        site.live.call_started(request, "cl-9001")
        site.live.call_event(request, Said("agent", "Hi Kim, this is the shop.", 1.0))
        site.live.call_event(request, Said("caller", "Oh, hello!", 2.0))
        site.live.call_event(request, TurnTimings(1, 2.0, 2.2, 2.4, 2.75))
        card = page.locator('[data-attempt="9001"]')
        await expect(card.locator(".live-lines li")).to_have_count(2)
        await expect(card.locator(".state")).to_have_text("answered")
        await expect(card.locator(".meta")).to_contain_text("last reply in 750 ms")
        await shot(page, "07-live")

        # The other pages render under the policy too.
        for n, path in enumerate(("/contacts", "/users"), 8):
            await page.goto(site.url + path)
            await expect(page.locator("h1")).to_be_visible()
            await shot(page, f"{n:02d}-{path.strip('/')}")

        # A do-not-call import: the page's script sends the file to the API as CSV.
        await page.goto(site.url + "/compliance")
        await page.set_input_files(
            "#dnc-import input[type=file]",
            files=FilePayload(
                name="dnc.csv",
                mimeType="text/csv",
                buffer=b"phone\n+12125550177\n(212) 555-0178\nnot a number\n",
            ),
        )
        await page.click("#dnc-import button")
        await expect(page.locator("#dnc-import-result")).to_contain_text("2 added")
        await page.reload()
        await expect(page.locator("#do-not-call .figure")).to_have_text("2")
        await shot(page, "10-compliance")

        # Pause a campaign.
        await page.goto(site.url + "/campaigns")
        await page.click("#campaign-recovery button:has-text('Pause')")
        await expect(page.locator("#campaign-recovery .state")).to_have_text("paused")
        await expect(page.locator("#campaign-recovery button")).to_have_text("Resume")
        await shot(page, "11-campaigns-paused")
        await browser.close()

    assert await site.db.run(repo.paused_campaigns) == {"recovery"}
    assert await site.db.run(lambda s: repo.on_do_not_call(s, "+12125550178"))
    assert problems == []
