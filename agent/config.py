"""Cartline's configuration: pydantic models of ``config.yaml``.

Every section rejects unknown keys, so a misspelt option is an error rather than
a silent default. String values may name environment variables as ``${NAME}`` or
``${NAME:-default}``; use that for secrets so they stay out of the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.campaigns.settings import (
    CampaignSettings,
    IntakeSettings,
    MerchantSettings,
    SchedulerSettings,
    SmsSettings,
    StoreSettings,
    check_campaign_names,
    default_campaigns,
)
from agent.errors import ConfigError, ConfigProblem
from agent.privacy.settings import PrivacySettings
from agent.speech.settings import (
    LlamaSettings,
    OpenAiLlmSettings,
    PiperSettings,
    SpeechSettings,
    TurnSettings,
    WhisperSettings,
)
from agent.web.settings import WebSettings

Port = Annotated[int, Field(ge=1, le=65535)]
DEFAULT_CONFIG_PATH = Path("config.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", value):
            raise ValueError("must be an IP address or a host name") from None
    return value


class AsteriskSettings(_Section):
    """Where Asterisk lives and how Cartline runs it."""

    root: Path = Path("/opt/cartline/asterisk-root")
    binary: str = "/usr/sbin/asterisk"
    instance: str = Field("cartline", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    run_as: str = "asterisk"
    start_timeout_s: float = Field(15.0, gt=0)
    stop_timeout_s: float = Field(10.0, gt=0)

    @property
    def chrooted(self) -> bool:
        return self.root != Path("/")


class AmiSettings(_Section):
    """The Asterisk Manager Interface account Cartline logs in with."""

    host: str = "127.0.0.1"
    port: Port = 5038
    username: str = Field("cartline", pattern=r"^[A-Za-z0-9_-]+$")
    secret: SecretStr = SecretStr("cartline-dev-secret")
    ping_delay_s: float = Field(10.0, gt=0)
    reconnect_s: float = Field(2.0, gt=0)

    _host = field_validator("host")(_check_host)


class ListenSettings(_Section):
    """A TCP address that Cartline listens on and Asterisk connects to."""

    host: str = "127.0.0.1"
    port: Port

    _host = field_validator("host")(_check_host)


class AudioSocketSettings(ListenSettings):
    """The media path: Asterisk's AudioSocket() connects here for each call."""

    port: Port = 9092
    inbound_queue_frames: int = Field(50, ge=5, le=5000)
    pacer_lead_frames: int = Field(2, ge=1, le=3)
    uuid_timeout_s: float = Field(5.0, gt=0)


class FastAgiSettings(ListenSettings):
    """Dialplan questions (inbound routing) are asked here over FastAGI."""

    port: Port = 4573


class TrunkSettings(_Section):
    """The merchant's SIP trunk, and the SIP and RTP addresses Asterisk uses."""

    name: str = Field("trunk", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    host: str = "127.0.0.1"
    port: Port = 5062
    transport: Literal["udp", "tcp"] = "udp"
    username: str | None = None
    password: SecretStr | None = None
    from_user: str = "cartline"
    from_domain: str | None = None
    caller_id: str = Field("+15550100000", pattern=r"^\+?[0-9]{3,20}$")
    codecs: tuple[Literal["ulaw", "alaw", "g722", "opus", "gsm"], ...] = ("ulaw", "alaw", "g722")
    sip_bind_host: str = "127.0.0.1"
    sip_port: Port = 5060
    media_address: str = "127.0.0.1"
    # Behind NAT: the public address the trunk must see in SIP and SDP, and the networks
    # that are local (no rewriting for them), e.g. ["10.0.0.0/8", "192.168.0.0/16"].
    external_address: str | None = None
    local_nets: tuple[str, ...] = ()
    rtp_port_start: Port = 10000
    rtp_port_end: Port = 10999
    ring_timeout_s: float = Field(30.0, gt=0, le=300)
    max_channels: int = Field(30, ge=1)

    _hosts = field_validator("host", "sip_bind_host", "media_address")(_check_host)

    @field_validator("external_address")
    @classmethod
    def _external(cls, value: str | None) -> str | None:
        return None if value is None else _check_host(value)

    @field_validator("local_nets")
    @classmethod
    def _nets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network like 192.168.0.0/16") from None
        return value

    @model_validator(mode="after")
    def _rtp_range(self) -> TrunkSettings:
        if self.rtp_port_end - self.rtp_port_start < 10:
            raise ValueError("rtp_port_end must be at least 10 above rtp_port_start")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if not self.codecs:
            raise ValueError("codecs must name at least one codec")
        return self


class RecordingSettings(_Section):
    """Call recordings written by Asterisk's MixMonitor."""

    enabled: bool = True
    # As Asterisk sees it: inside the Asterisk root when Asterisk runs in one.
    dir: Path = Path("/var/spool/cartline/recordings")


class CallSettings(_Section):
    """How outbound calls are placed."""

    amd: bool = True
    # Sent with each outbound call so the dialplan's recording notice and
    # AudioSocket() can be found by the agent side.
    max_call_s: int = Field(600, ge=10, le=7200)


class SimulatorSettings(_Section):
    """The customer simulator: a second Asterisk on loopback that plays the customer."""

    instance: str = Field("cartline-sim", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    sip_host: str = "127.0.0.1"
    sip_port: Port = 5062
    ami_port: Port = 5039
    ami_username: str = "simulator"
    ami_secret: SecretStr = SecretStr("simulator-dev-secret")
    audiosocket_port: Port = 9093
    fastagi_port: Port = 4574
    rtp_port_start: Port = 11000
    rtp_port_end: Port = 11999
    # The number the simulator dials for inbound calls to the merchant.
    merchant_number: str = "+15550100000"


class Settings(_Section):
    """The whole ``config.yaml``."""

    asterisk: AsteriskSettings = AsteriskSettings()
    ami: AmiSettings = AmiSettings()
    audiosocket: AudioSocketSettings = AudioSocketSettings()
    fastagi: FastAgiSettings = FastAgiSettings()
    trunk: TrunkSettings = TrunkSettings()
    recordings: RecordingSettings = RecordingSettings()
    calls: CallSettings = CallSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    speech: SpeechSettings = SpeechSettings()
    store: StoreSettings = StoreSettings()
    web: WebSettings = WebSettings()
    intake: IntakeSettings = IntakeSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    campaigns: tuple[CampaignSettings, ...] = Field(default_factory=default_campaigns)
    privacy: PrivacySettings = PrivacySettings()
    merchant: MerchantSettings = MerchantSettings()
    sms: SmsSettings = SmsSettings()
    # Where Cartline keeps its own state (PID files, rendered configuration, the SQLite file).
    state_dir: Path = Path("var")

    _campaign_names = field_validator("campaigns")(check_campaign_names)

    @property
    def database_url(self) -> str:
        """The configured database, or the SQLite file in ``state_dir``."""
        url = self.store.url.get_secret_value()
        return url or f"sqlite:///{(self.state_dir / 'cartline.db').resolve()}"

    @property
    def keys_file(self) -> Path:
        """Where the data keys are kept."""
        return self.privacy.keys_file or self.state_dir / "keys" / "data.keys"

    def campaign(self, name: str) -> CampaignSettings:
        for c in self.campaigns:
            if c.name == name:
                return c
        raise KeyError(name)

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        used: dict[int, str] = {}
        pairs = [
            (self.ami.port, "ami.port"),
            (self.audiosocket.port, "audiosocket.port"),
            (self.fastagi.port, "fastagi.port"),
            (self.trunk.sip_port, "trunk.sip_port"),
            (self.simulator.ami_port, "simulator.ami_port"),
            (self.simulator.audiosocket_port, "simulator.audiosocket_port"),
            (self.simulator.fastagi_port, "simulator.fastagi_port"),
            (self.web.port, "web.port"),
        ]
        for port, name in pairs:
            if port in used:
                raise ValueError(f"{name} and {used[port]} both use port {port}")
            used[port] = name
        return self


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, path: str, problems: list[ConfigProblem]) -> Any:
    if isinstance(node, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None:
                if default is None:
                    problems.append(ConfigProblem(path, f"environment variable {name} is not set"))
                    return ""
                return default
            return value

        return _ENV_REF.sub(substitute, node)
    return node


def _problem_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain_message(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "is not a known option (check the spelling; see config.yaml for the options)"
    if kind == "missing":
        return "is required"
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    return msg[0].lower() + msg[1:] if msg else "is invalid"


def parse_settings(data: Any, source: str = "config") -> Settings:
    """Validates already-parsed YAML data; raises ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source, [ConfigProblem("", "the top level must be a mapping of sections")]
        )
    problems: list[ConfigProblem] = []
    data = _expand_env(data, "", problems)
    if problems:
        raise ConfigError(source, problems)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            source,
            [ConfigProblem(_problem_path(e["loc"]), _plain_message(e)) for e in exc.errors()],
        ) from None


def load_settings(path: Path | None = None) -> Settings:
    """Reads and validates a config file (``config.yaml`` by default)."""
    path = path or Path(os.environ.get("CARTLINE_CONFIG", DEFAULT_CONFIG_PATH))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigProblem("", "the file does not exist")]) from None
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigProblem("", f"cannot be read: {exc.strerror}")]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            str(path), [ConfigProblem("", f"YAML syntax error at {where}: {problem}")]
        ) from None
    return parse_settings(data, str(path))


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dump_settings(settings: Settings) -> dict[str, Any]:
    """The settings as config.yaml would hold them, secrets included (write it with care)."""
    return dict(_plain(settings.model_dump(mode="python")))


__all__ = [
    "LlamaSettings",
    "OpenAiLlmSettings",
    "PiperSettings",
    "Settings",
    "SpeechSettings",
    "TurnSettings",
    "WhisperSettings",
    "dump_settings",
    "load_settings",
    "parse_settings",
]
