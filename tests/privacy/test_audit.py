"""The processing log: one entry per access to a customer's data, and no way to change it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from agent.cli import main
from agent.privacy import audit
from agent.store.db import Database
from agent.store.tables import ProcessingLog, table

DATA = Path(__file__).parent.parent / "campaigns" / "data"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.close()


def test_the_log_is_append_only(db: Database) -> None:
    db.call(lambda s: audit.record(s, actor="cli:test", action="export", contacts=[3, 1]))
    [entry] = db.call(audit.entries)
    assert entry["subjects"] == "contact:1 contact:3" and entry["actor"] == "cli:test"
    t = table(ProcessingLog)
    with pytest.raises(SqlDatabaseError, match="append-only"):
        db.call(lambda s: s.connection().execute(update(t).values(actor="someone else")))
    with pytest.raises(SqlDatabaseError, match="append-only"):
        db.call(lambda s: s.connection().execute(delete(t)))
    assert len(db.call(audit.entries)) == 1


def test_every_access_from_the_command_line_writes_one_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    c = ["-c", str(config)]
    assert main([*c, "import", "checkouts", str(DATA / "checkouts.csv")]) == 0
    capsys.readouterr()
    assert main([*c, "why", "csv:1001"]) == 0
    out = tmp_path / "maria.zip"
    assert main([*c, "privacy", "export", "--phone", "(201) 555-0123", "--to", str(out)]) == 0
    assert main([*c, "privacy", "erase", "--phone", "(201) 555-0123"]) == 0  # report only
    assert (
        main([*c, "privacy", "erase", "--phone", "(201) 555-0123", "--yes", "--why", "GDPR"]) == 0
    )
    assert main([*c, "privacy", "purge"]) == 0
    capsys.readouterr()
    assert main([*c, "privacy", "log"]) == 0
    log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["action"] for e in log] == ["view", "export", "erase", "purge"]
    assert log[0]["subjects"] == log[1]["subjects"] == log[2]["subjects"] != ""
    assert log[2]["purpose"] == "GDPR" and log[3]["actor"] == "system:retention"
    text = json.dumps(log)
    assert "555" not in text and "maria" not in text.lower()  # ids only, no personal data
    assert all(dt.datetime.fromisoformat(e["at"]) for e in log)
