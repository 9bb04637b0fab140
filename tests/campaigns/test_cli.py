"""`cartline import checkouts`, `cartline campaign` and `cartline why` on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "campaigns": [{"name": "checkout-recovery"}, {"name": "spring-recovery"}],
            }
        )
    )
    return path


def test_import_reports_rows_and_rejections(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "errors.csv"
    code = main(
        ["-c", str(config), "import", "checkouts", str(DATA / "checkouts_bad.csv"),
         "--errors", str(report)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2  # some rows were rejected
    assert "row(s) rejected" in out
    assert "line " in err
    lines = report.read_text().splitlines()
    assert lines[0] == "line,code,message" and len(lines) > 1
    # No customer data in the report: the bad file's phone numbers and emails stay out.
    assert "@" not in report.read_text()


def test_import_good_file_schedules_calls_and_why_explains(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(config), "import", "checkouts", str(DATA / "checkouts.csv")]) == 0
    out = capsys.readouterr().out
    assert "checkout(s) imported" in out
    assert main(["-c", str(config), "why", "csv:1001"]) == 0
    why = capsys.readouterr().out
    assert "scheduled" in why and "abandoned" in why
    # A second import of the same file changes nothing.
    assert main(["-c", str(config), "import", "checkouts", str(DATA / "checkouts.csv")]) == 0
    assert " 0 call(s) scheduled" in capsys.readouterr().out


def test_pause_and_resume(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(config), "campaign", "pause", "checkout-recovery"]) == 0
    assert main(["-c", str(config), "campaign", "list"]) == 0
    listing = capsys.readouterr().out
    assert "paused (by hand)" in listing
    assert main(["-c", str(config), "campaign", "resume", "checkout-recovery"]) == 0
    assert main(["-c", str(config), "campaign", "list"]) == 0
    assert "running" in capsys.readouterr().out.splitlines()[-2]
    assert main(["-c", str(config), "campaign", "pause", "nope"]) == 1
