from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config import Settings, load_settings, parse_settings
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _problems(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    return {p.path: p.message for p in info.value.problems}


def test_shipped_config_is_valid_and_matches_defaults() -> None:
    settings = load_settings(ROOT / "config.yaml")
    assert settings.ami.port == 5038
    assert settings.audiosocket.pacer_lead_frames == 2
    assert settings.trunk.codecs == ("ulaw", "alaw", "g722")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    assert load_settings(path) == Settings()


def test_unknown_keys_are_rejected_with_their_path() -> None:
    problems = _problems({"ami": {"prot": 5038}, "speach": {}})
    assert "ami.prot" in problems
    assert "speach" in problems
    assert "not a known option" in problems["ami.prot"]


def test_every_problem_is_reported_with_its_path() -> None:
    problems = _problems(
        {
            "ami": {"port": "abc", "host": "not a host"},
            "trunk": {"codecs": ["ulaw", "speex"], "rtp_port_start": 20000, "rtp_port_end": 20001},
            "audiosocket": {"pacer_lead_frames": 9},
        }
    )
    assert set(problems) >= {
        "ami.port",
        "ami.host",
        "trunk.codecs[1]",
        "audiosocket.pacer_lead_frames",
    }
    assert "integer" in problems["ami.port"]


def test_cross_field_rules() -> None:
    assert "trunk" in _problems({"trunk": {"rtp_port_start": 20000, "rtp_port_end": 20005}})
    assert "trunk" in _problems({"trunk": {"username": "u"}})
    clash = _problems({"fastagi": {"port": 5038}})
    assert any("both use port 5038" in m for m in clash.values())


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ami:\n  port: 5038\n  host: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "line" in str(info.value) and "YAML syntax error" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AMI_SECRET", "s3cret-from-env")
    settings = parse_settings({"ami": {"secret": "${TEST_AMI_SECRET}"}})
    assert settings.ami.secret.get_secret_value() == "s3cret-from-env"
    assert "s3cret-from-env" not in repr(settings)
    defaulted = parse_settings({"ami": {"secret": "${TEST_UNSET_VAR_XYZ:-fallback}"}})
    assert defaulted.ami.secret.get_secret_value() == "fallback"


def test_unset_environment_variable_is_an_error() -> None:
    problems = _problems({"ami": {"secret": "${TEST_UNSET_VAR_XYZ}"}})
    assert "TEST_UNSET_VAR_XYZ is not set" in problems["ami.secret"]


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.ami.port = 1  # type: ignore[misc]


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("ami:\n  port: 5040\n")
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text("ami:\n  port: seventy\n  colour: blue\n")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "ami.port" in err and "ami.colour" in err and "2 problem(s)" in err
