"""Renders the shipped ``dialplan/`` templates into an Asterisk configuration folder.

Three template folders: ``cartline/`` holds the files a merchant includes in an
Asterisk they already run (dialplan, trunk, AMI account); ``standalone/`` holds a
complete minimal Asterisk around them, which ``cartline asterisk start`` runs;
``simulator/`` replaces some standalone files for the customer simulator.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.config import Settings, TrunkSettings
from agent.errors import AsteriskError

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def dialplan_dir() -> Path:
    """The folder of shipped templates (``CARTLINE_DIALPLAN_DIR`` overrides it)."""
    override = os.environ.get("CARTLINE_DIALPLAN_DIR")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "dialplan"
    if not (path / "standalone").is_dir():
        raise AsteriskError(f"the dialplan templates are missing at {path}")
    return path


@dataclass(frozen=True)
class Instance:
    """One Asterisk process: its name, the root it runs in and its own folders.

    Paths named ``*_dir`` are as Asterisk sees them (inside the root);
    :meth:`host` turns one into the path on this machine.
    """

    name: str
    root: Path
    binary: str = "/usr/sbin/asterisk"
    run_as: str = "asterisk"

    def _inner(self, base: str) -> PurePosixPath:
        return PurePosixPath(base) / "cartline" / self.name

    @property
    def etc_dir(self) -> PurePosixPath:
        return self._inner("/etc")

    @property
    def run_dir(self) -> PurePosixPath:
        return self._inner("/run")

    @property
    def log_dir(self) -> PurePosixPath:
        return self._inner("/var/log")

    @property
    def spool_dir(self) -> PurePosixPath:
        return self._inner("/var/spool")

    @property
    def db_dir(self) -> PurePosixPath:
        return self._inner("/var/lib")

    @property
    def cache_dir(self) -> PurePosixPath:
        return self._inner("/var/cache")

    @property
    def config_file(self) -> PurePosixPath:
        return self.etc_dir / "asterisk.conf"

    @property
    def chrooted(self) -> bool:
        return self.root != Path("/")

    def host(self, inner: PurePosixPath | Path) -> Path:
        """The host path of a path inside the root."""
        return self.root / PurePosixPath(inner).relative_to("/")


def pbx_instance(settings: Settings) -> Instance:
    a = settings.asterisk
    return Instance(a.instance, a.root, a.binary, a.run_as)


def simulator_instance(settings: Settings) -> Instance:
    a = settings.asterisk
    return Instance(settings.simulator.instance, a.root, a.binary, a.run_as)


def render_text(template: str, values: Mapping[str, str], name: str = "template") -> str:
    """Fills ``{{ key }}`` placeholders; an unknown key is an error, not a blank."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise AsteriskError(f"{name}: unknown placeholder {{{{ {key} }}}}")
        return values[key]

    text = _PLACEHOLDER.sub(fill, template)
    # Optional blocks render as empty lines; keep the files tidy.
    return re.sub(r"\n{3,}", "\n\n", text)


def _modules_dir(root: Path) -> str:
    for pattern in (
        "usr/lib/*/asterisk/modules",
        "usr/lib/asterisk/modules",
        "usr/lib64/asterisk/modules",
    ):
        found = sorted(root.glob(pattern))
        if found:
            return "/" + str(found[0].relative_to(root))
    raise AsteriskError(
        f"no Asterisk modules found under {root}; run scripts/install-asterisk "
        "or set asterisk.root in config.yaml"
    )


def _dir_values(instance: Instance) -> dict[str, str]:
    return {
        "dir_etc": str(instance.etc_dir),
        "dir_run": str(instance.run_dir),
        "dir_log": str(instance.log_dir),
        "dir_spool": str(instance.spool_dir),
        "dir_db": str(instance.db_dir),
        "dir_cache": str(instance.cache_dir),
        "dir_modules": _modules_dir(instance.root),
    }


def pbx_values(settings: Settings) -> dict[str, str]:
    """Template values for Cartline's own Asterisk configuration."""
    t = settings.trunk
    auth_lines = ""
    auth_sections = ""
    if t.username is not None and t.password is not None:
        auth_lines = f"outbound_auth = {t.name}-auth"
        auth_sections = (
            f"[{t.name}-auth]\ntype = auth\nauth_type = userpass\n"
            f"username = {t.username}\npassword = {t.password.get_secret_value()}\n\n"
            f"[{t.name}-registration]\ntype = registration\ntransport = cartline-transport\n"
            f"outbound_auth = {t.name}-auth\nserver_uri = sip:{t.host}:{t.port}\n"
            f"client_uri = sip:{t.username}@{t.host}\nretry_interval = 60\n"
        )
    return {
        "audiosocket_hostport": f"{settings.audiosocket.host}:{settings.audiosocket.port}",
        "agi_url": f"agi://{settings.fastagi.host}:{settings.fastagi.port}",
        "recordings_dir": str(settings.recordings.dir),
        "max_call_s": str(settings.calls.max_call_s),
        "transfer_ring_s": str(round(settings.trunk.ring_timeout_s)),
        "trunk_name": t.name,
        "trunk_transport": t.transport,
        "trunk_host": t.host,
        "trunk_contact": f"{t.host}:{t.port}",
        "sip_bind": f"{t.sip_bind_host}:{t.sip_port}",
        "transport_extra": _nat_lines(t),
        "codecs": ",".join(t.codecs),
        "media_address": t.media_address,
        "from_user": t.from_user,
        "from_domain_line": f"from_domain = {t.from_domain}" if t.from_domain else "",
        "auth_lines": auth_lines,
        "auth_sections": auth_sections,
        "ami_username": settings.ami.username,
        "ami_secret": settings.ami.secret.get_secret_value(),
        "ami_permit": "127.0.0.1"
        if settings.ami.host in ("127.0.0.1", "localhost")
        else settings.ami.host,
        "ami_bind": settings.ami.host,
        "ami_port": str(settings.ami.port),
        "rtp_start": str(t.rtp_port_start),
        "rtp_end": str(t.rtp_port_end),
    }


def _nat_lines(t: TrunkSettings) -> str:
    """The transport's NAT settings: what the trunk sees as Asterisk's address."""
    if t.external_address is None:
        return ""
    lines = [
        f"external_media_address = {t.external_address}",
        f"external_signaling_address = {t.external_address}",
    ]
    lines += [f"local_net = {net}" for net in t.local_nets]
    return "\n".join(lines)


def simulator_values(settings: Settings) -> dict[str, str]:
    """Template values for the customer simulator's Asterisk."""
    s, t = settings.simulator, settings.trunk
    return {
        "sim_ami_port": str(s.ami_port),
        "sim_ami_username": s.ami_username,
        "sim_ami_secret": s.ami_secret.get_secret_value(),
        "sim_sip_bind": f"{s.sip_host}:{s.sip_port}",
        "merchant_contact": f"{t.sip_bind_host}:{t.sip_port}",
        "trunk_sip_host": t.sip_bind_host,
        "codecs": ",".join(t.codecs),
        "sim_agi_port": str(s.fastagi_port),
        "sim_audiosocket_port": str(s.audiosocket_port),
        "rtp_start": str(s.rtp_port_start),
        "rtp_end": str(s.rtp_port_end),
    }


def _owner(instance: Instance) -> tuple[int, int] | None:
    """uid and gid of the run_as user as the root's own passwd file names them."""
    if not instance.run_as or os.geteuid() != 0:
        return None
    passwd = instance.root / "etc/passwd"
    try:
        for line in passwd.read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if len(fields) > 3 and fields[0] == instance.run_as:
                return int(fields[2]), int(fields[3])
    except OSError:
        pass
    try:
        entry = pwd.getpwnam(instance.run_as)
    except KeyError:
        raise AsteriskError(
            f"user {instance.run_as!r} does not exist; set asterisk.run_as in config.yaml"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _render_folder(instance: Instance, sources: list[Path], values: Mapping[str, str]) -> Path:
    etc = instance.host(instance.etc_dir)
    etc.parent.mkdir(parents=True, exist_ok=True)
    staging = etc.with_name(etc.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # A later folder's file replaces an earlier folder's file of the same name.
    chosen: dict[str, Path] = {}
    for folder in sources:
        for template in sorted(folder.glob("*.conf")):
            chosen[template.name] = template
    for name, template in sorted(chosen.items()):
        text = render_text(template.read_text(encoding="utf-8"), values, name)
        (staging / name).write_text(text, encoding="utf-8")
    for path in [staging, *staging.iterdir()]:
        # Asterisk drops privileges before reading its configuration.
        path.chmod(0o755 if path.is_dir() else 0o644)
    # The manager file holds a secret: readable by the Asterisk user only.
    owner = _owner(instance)
    for secret_file in ("manager.conf", "manager_cartline.conf", "pjsip_cartline.conf"):
        target = staging / secret_file
        if target.exists() and owner is not None:
            os.chown(target, *owner)
            target.chmod(0o640)
    shutil.rmtree(etc, ignore_errors=True)
    staging.rename(etc)
    return etc


def _make_state_dirs(instance: Instance, extra: list[PurePosixPath]) -> None:
    owner = _owner(instance)
    inner_dirs = [
        instance.run_dir,
        instance.log_dir,
        instance.spool_dir,
        instance.db_dir,
        instance.cache_dir,
        *extra,
    ]
    for inner in inner_dirs:
        path = instance.host(inner)
        path.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(path, *owner)


def render_pbx(settings: Settings) -> Instance:
    """Writes Cartline's Asterisk configuration; returns the instance to start."""
    instance = pbx_instance(settings)
    base = dialplan_dir()
    values = {**pbx_values(settings), **_dir_values(instance)}
    _render_folder(instance, [base / "standalone", base / "cartline"], values)
    _make_state_dirs(instance, [PurePosixPath(settings.recordings.dir)])
    return instance


def render_simulator(settings: Settings) -> Instance:
    """Writes the customer simulator's Asterisk configuration."""
    instance = simulator_instance(settings)
    base = dialplan_dir()
    values = {**simulator_values(settings), **_dir_values(instance)}
    _render_folder(instance, [base / "standalone", base / "simulator"], values)
    _make_state_dirs(instance, [])
    return instance
