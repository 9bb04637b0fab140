"""The configuration examples in the docs are valid configurations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.config import Settings

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
ENV = re.compile(r"\$\{(\w+)")
# What the examples' environment variables stand for, so each can be checked.
VALUES = {"CARTLINE_DATABASE_URL": "postgresql+psycopg://cartline:secret@db/cartline"}


def _examples() -> list[tuple[str, str]]:
    found = []
    for doc in sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"]):
        for n, block in enumerate(BLOCK.findall(doc.read_text()), 1):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and set(data) <= set(Settings.model_fields):
                found.append((f"{doc.name}#{n}", block))
    return found


EXAMPLES = _examples()


def test_the_docs_have_configuration_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("where", "block"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_each_example_passes_check_config(
    where: str, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV.findall(block):
        monkeypatch.setenv(name, VALUES.get(name, "example-value"))
    path = tmp_path / "config.yaml"
    path.write_text(block)
    assert main(["check-config", str(path)]) == 0, where
