from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config import parse_settings
from agent.errors import AsteriskError, ConfigError
from agent.telephony.dialplan import render_pbx, render_simulator, render_text


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("asterisk:x:101:101::/var/lib/asterisk:/bin/false\n")
    return root


def test_render_text_fills_and_rejects_unknown_placeholders() -> None:
    assert render_text("port = {{ port }}", {"port": "5038"}) == "port = 5038"
    with pytest.raises(AsteriskError, match="unknown placeholder"):
        render_text("x = {{ nope }}", {}, "x.conf")


def test_render_pbx_writes_a_complete_configuration(fake_root: Path) -> None:
    settings = parse_settings(
        {
            "asterisk": {"root": str(fake_root), "instance": "unit"},
            "ami": {"port": 6038, "secret": "topsecret"},
            "audiosocket": {"port": 9192},
            "trunk": {"sip_port": 6060, "rtp_port_start": 20000, "rtp_port_end": 20100},
        }
    )
    instance = render_pbx(settings)
    etc = fake_root / "etc/cartline/unit"
    assert instance.host(instance.etc_dir) == etc
    names = {p.name for p in etc.iterdir()}
    assert {"asterisk.conf", "modules.conf", "extensions.conf", "extensions_cartline.conf"} <= names
    assert {"pjsip.conf", "pjsip_cartline.conf", "manager.conf", "manager_cartline.conf"} <= names
    for path in etc.iterdir():
        assert "{{" not in path.read_text(), path.name
    ext = (etc / "extensions_cartline.conf").read_text()
    assert "CARTLINE_AUDIOSOCKET=127.0.0.1:9192" in ext
    assert "[cartline-outbound]" in ext and "[cartline-inbound]" in ext
    assert "port = 6038" in (etc / "manager.conf").read_text()
    assert "secret = topsecret" in (etc / "manager_cartline.conf").read_text()
    assert "bind = 127.0.0.1:6060" in (etc / "pjsip_cartline.conf").read_text()
    assert "rtpstart = 20000" in (etc / "rtp.conf").read_text()
    assert (
        "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules"
        in (etc / "asterisk.conf").read_text()
    )
    for inner in ("run", "var/log", "var/spool", "var/lib"):
        assert (fake_root / inner / "cartline/unit").is_dir()
    assert (fake_root / "var/spool/cartline/recordings").is_dir()
    # No registration or credentials without a trunk username.
    assert "type = auth" not in (etc / "pjsip_cartline.conf").read_text()


def test_trunk_credentials_add_auth_and_registration(fake_root: Path) -> None:
    settings = parse_settings(
        {
            "asterisk": {"root": str(fake_root), "instance": "unit"},
            "trunk": {"host": "198.51.100.7", "username": "acct1", "password": "pw1"},
        }
    )
    render_pbx(settings)
    pjsip = (fake_root / "etc/cartline/unit/pjsip_cartline.conf").read_text()
    assert "outbound_auth = trunk-auth" in pjsip
    assert "type = registration" in pjsip and "server_uri = sip:198.51.100.7:5062" in pjsip
    assert re.search(r"username = acct1\npassword = pw1", pjsip)


def test_behind_nat_the_transport_names_the_public_address(fake_root: Path) -> None:
    base = {"asterisk": {"root": str(fake_root), "instance": "unit"}}
    render_pbx(parse_settings(base))
    pjsip = fake_root / "etc/cartline/unit/pjsip_cartline.conf"
    assert "external_media_address" not in pjsip.read_text()
    nat = {"external_address": "203.0.113.9", "local_nets": ["10.0.0.0/8", "192.168.0.0/16"]}
    render_pbx(parse_settings({**base, "trunk": nat}))
    text = pjsip.read_text()
    assert "external_media_address = 203.0.113.9" in text
    assert "external_signaling_address = 203.0.113.9" in text
    assert "local_net = 10.0.0.0/8\nlocal_net = 192.168.0.0/16" in text
    with pytest.raises(ConfigError, match="not a network"):
        parse_settings({"trunk": {"local_nets": ["lan"]}})


def test_render_simulator_overrides_the_pbx_files(fake_root: Path) -> None:
    settings = parse_settings({"asterisk": {"root": str(fake_root)}})
    render_simulator(settings)
    etc = fake_root / "etc/cartline/cartline-sim"
    assert "port = 5039" in (etc / "manager.conf").read_text()
    assert "[sim-customer]" in (etc / "extensions.conf").read_text()
    assert not (etc / "extensions_cartline.conf").exists()


def test_missing_asterisk_modules_is_a_clear_error(tmp_path: Path) -> None:
    settings = parse_settings({"asterisk": {"root": str(tmp_path)}})
    with pytest.raises(AsteriskError, match="install-asterisk"):
        render_pbx(settings)
