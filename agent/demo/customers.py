"""The demo store's customers: a dozen abandoned checkouts, each with its own behaviour.

Each customer is plain data: who they are, what they left in the cart, whether
they agreed to calls and texts, what their phone does on each call (a scenario
for the customer simulator) and which results count as the demo working. The
lines are spoken with the agent's own Piper voice, so Whisper hears them as it
would a clear caller; what the agent does about them is decided live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from agent.simulator.scenario import (
    Answer,
    AwaitReply,
    Dtmf,
    Hangup,
    Pause,
    Say,
    Scenario,
    Step,
    voicemail,
)
from agent.simulator.voice import tone

# Turns a line into 8 kHz telephone PCM (the speech models' Piper voice).
Render = Callable[[str], Awaitable[bytes]]

# Where a transfer to a person goes: a number the simulator answers as the store's team.
STORE_TEAM = "+12125550100"
STORE_TEAM_LINE = "Hello, this is Alex from the Example Store team. How can I help?"


@dataclass(frozen=True)
class Line:
    """One thing the customer does: say a line, wait for the agent, press keys, pause, hang up."""

    say: str | None = None
    wait: bool = False
    keys: str | None = None
    pause_s: float = 0.0
    hang_up: bool = False


def says(text: str) -> Line:
    return Line(say=text)


WAIT = Line(wait=True)
HANG_UP = Line(hang_up=True)
# Waits for the agent's answer, however slow a busy machine makes it, then hangs up
# unless the agent has ended the call first.
ANSWER_THEN_HANG_UP = (WAIT, Line(pause_s=4.0), HANG_UP)


def pause(seconds: float) -> Line:
    return Line(pause_s=seconds)


def keys(digits: str) -> Line:
    return Line(keys=digits)


@dataclass(frozen=True)
class Phone:
    """What the customer's phone does on one call."""

    answer: Answer = Answer.ANSWER
    ring_s: float = 1.0
    lines: tuple[Line, ...] = ()
    voicemail: bool = False


@dataclass(frozen=True)
class DemoCustomer:
    """One abandoned checkout of the demo store and how its customer behaves."""

    key: str
    first_name: str
    last_name: str
    phone: str
    city: str
    region: str
    items: tuple[tuple[str, int, str], ...]
    behaviour: str
    # The results that show the demo working for this customer (see agent.demo.summary).
    expect: frozenset[str]
    phones: tuple[Phone, ...] = ()
    call_consent: bool = True
    sms_consent: bool = True
    buys_after_text: bool = False
    # In the shortened run (--short) as well as the full one.
    short: bool = False

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def total(self) -> Decimal:
        return sum((Decimal(price) * qty for _, qty, price in self.items), Decimal(0))


# The first thing a person says on answering; AMD hears a short greeting as a person.
HELLO = says("Hello?")


def _talk(*lines: Line) -> Phone:
    return Phone(lines=(HELLO, WAIT, *lines))


CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        key="maya",
        first_name="Maya",
        last_name="Chen",
        phone="+12125550101",
        city="New York",
        region="NY",
        items=(("Trail Running Shoes", 1, "129.95"), ("Merino Socks", 2, "14.50")),
        behaviour="asks for the link by text, then buys",
        expect=frozenset({"completed", "purchased"}),
        phones=(
            _talk(
                says("Oh yes. Can you text me the link, please?"),
                WAIT,
                pause(2.0),
                says("Great, thank you. Bye."),
                *ANSWER_THEN_HANG_UP,
            ),
        ),
        buys_after_text=True,
        short=True,
    ),
    DemoCustomer(
        key="priya",
        first_name="Priya",
        last_name="Patel",
        phone="+12125550102",
        city="Brooklyn",
        region="NY",
        items=(("Linen Throw", 2, "89.00"),),
        behaviour="opts out: stop calling me",
        expect=frozenset({"opted_out"}),
        phones=(
            _talk(says("Please stop calling me. Take me off your list."), *ANSWER_THEN_HANG_UP),
        ),
        short=True,
    ),
    DemoCustomer(
        key="jordan",
        first_name="Jordan",
        last_name="Baker",
        phone="+12125550103",
        city="Queens",
        region="NY",
        items=(("Camping Stove", 1, "64.00"),),
        behaviour="a voicemail box: the agent leaves the campaign's message",
        expect=frozenset({"voicemail"}),
        phones=(Phone(ring_s=2.0, voicemail=True),),
        short=True,
    ),
    DemoCustomer(
        key="leo",
        first_name="Leo",
        last_name="Novak",
        phone="+12125550104",
        city="Yonkers",
        region="NY",
        items=(("Rain Jacket", 1, "149.00"),),
        behaviour="busy at first; answers the retry: already bought it",
        expect=frozenset({"purchased"}),
        phones=(
            Phone(answer=Answer.BUSY),
            _talk(says("Oh, I already bought it yesterday, thanks."), *ANSWER_THEN_HANG_UP),
        ),
        short=True,
    ),
    DemoCustomer(
        key="ben",
        first_name="Ben",
        last_name="Carter",
        phone="+12125550105",
        city="Albany",
        region="NY",
        items=(("Hiking Poles", 1, "59.00"),),
        behaviour="never agreed to calls: not called",
        expect=frozenset({"not called: no_consent"}),
        call_consent=False,
        sms_consent=False,
        short=True,
    ),
    DemoCustomer(
        key="sam",
        first_name="Sam",
        last_name="Ortiz",
        phone="+12125550106",
        city="Buffalo",
        region="NY",
        items=(("Down Sleeping Bag", 1, "219.00"),),
        behaviour="wants to speak to a person: transferred to the store's team",
        expect=frozenset({"transferred"}),
        phones=(_talk(says("Can I talk to a real person, please?"), WAIT, pause(15.0), HANG_UP),),
    ),
    DemoCustomer(
        key="tom",
        first_name="Tom",
        last_name="Becker",
        phone="+12125550107",
        city="Rochester",
        region="NY",
        items=(("Headlamp", 1, "39.95"), ("Batteries", 1, "9.99")),
        behaviour="busy now: call me back tomorrow at 3",
        expect=frozenset({"callback"}),
        phones=(
            _talk(
                says("I'm busy right now, can you call me tomorrow at 3 pm?"), *ANSWER_THEN_HANG_UP
            ),
        ),
    ),
    DemoCustomer(
        key="ana",
        first_name="Ana",
        last_name="Silva",
        phone="+12125550108",
        city="Ithaca",
        region="NY",
        items=(("Yoga Mat", 1, "45.00"),),
        behaviour="wrong number",
        expect=frozenset({"wrong_person"}),
        phones=(
            _talk(
                says("Sorry, you have the wrong number. There is no Ana here."),
                *ANSWER_THEN_HANG_UP,
            ),
        ),
    ),
    DemoCustomer(
        key="grace",
        first_name="Grace",
        last_name="Kim",
        phone="+12125550109",
        city="Syracuse",
        region="NY",
        items=(("Insulated Bottle", 3, "29.00"), ("Day Pack", 1, "89.00")),
        behaviour="finds it too expensive: offered the discount, takes the link",
        expect=frozenset({"completed", "purchased"}),
        phones=(
            _talk(
                says("It was a bit too expensive for me. Do you have any discount?"),
                WAIT,
                pause(1.0),
                says("Okay, please text me the link."),
                WAIT,
                pause(2.0),
                says("Thanks, bye."),
                *ANSWER_THEN_HANG_UP,
            ),
        ),
        buys_after_text=True,
    ),
    DemoCustomer(
        key="omar",
        first_name="Omar",
        last_name="Haddad",
        phone="+12125550110",
        city="Utica",
        region="NY",
        items=(("Camp Chair", 2, "49.00"),),
        behaviour="presses 9, the opt-out key",
        expect=frozenset({"opted_out"}),
        phones=(_talk(keys("9"), *ANSWER_THEN_HANG_UP),),
    ),
    DemoCustomer(
        key="lucy",
        first_name="Lucy",
        last_name="Ford",
        phone="+12125550111",
        city="Manhattan",
        region="NY",
        items=(("Wool Beanie", 1, "24.00"),),
        behaviour="does not answer; on the retry: not interested",
        expect=frozenset({"not_interested"}),
        phones=(
            Phone(answer=Answer.NO_ANSWER),
            _talk(
                says("No thanks, I'm not interested any more. I found it somewhere else."),
                *ANSWER_THEN_HANG_UP,
            ),
        ),
    ),
    DemoCustomer(
        key="eve",
        first_name="Eve",
        last_name="Adams",
        phone="+1 555 12",
        city="Bronx",
        region="NY",
        items=(("Gift Card", 1, "50.00"),),
        behaviour="typed an impossible phone number: kept, never called",
        expect=frozenset({"not called: invalid_phone"}),
    ),
)


def cast(short: bool, only: tuple[str, ...] = ()) -> tuple[DemoCustomer, ...]:
    """The customers of this run: all, the shortened set, or those named in ``only``."""
    if only:
        known = {c.key for c in CUSTOMERS}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(
                f"no demo customer named {', '.join(unknown)}; there are {', '.join(sorted(known))}"
            )
        return tuple(c for c in CUSTOMERS if c.key in only)
    return tuple(c for c in CUSTOMERS if c.short or not short)


async def scenarios(customer: DemoCustomer, render: Render) -> list[Scenario]:
    """The customer's phone on each call, in turn, with its lines spoken by ``render``."""
    out = []
    for i, phone in enumerate(customer.phones):
        name = f"{customer.key}-{i + 1}"
        if phone.voicemail:
            box = voicemail(tone(1000, 0.6))
            out.append(Scenario(ring_s=phone.ring_s, steps=box.steps, name=name))
            continue
        steps = tuple([await _step(line, render) for line in phone.lines])
        out.append(Scenario(answer=phone.answer, ring_s=phone.ring_s, steps=steps, name=name))
    return out


async def _step(line: Line, render: Render) -> Step:
    if line.say is not None:
        return Say(pcm=await render(line.say), label=line.say[:24])
    if line.wait:
        return AwaitReply(silence_s=1.2, timeout_s=45.0)
    if line.keys is not None:
        return Dtmf(line.keys)
    if line.hang_up:
        return Hangup()
    return Pause(line.pause_s)
