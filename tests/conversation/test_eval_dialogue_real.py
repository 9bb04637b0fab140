"""Three scenarios of the dialogue evaluation end to end, with the real default model.

Slow on a small CPU (a few seconds a decision); the whole set runs with scripts/eval-dialogue.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from agent.config import LlamaSettings
from agent.speech.llama import LlamaLlm
from agent.speech.weights import prepare_llm

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "eval_dialogue", ROOT / "scripts/eval_dialogue.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


ev = _load()


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaLlm]:
    prepare_llm(MODELS)
    model = LlamaLlm(LlamaSettings(), MODELS)
    yield model
    model._worker.close()


@pytest.mark.parametrize(
    "name", ["opt-out-late", "busy-callback-tomorrow-at-3", "price-objection-with-offer"]
)
async def test_a_scenario_passes_end_to_end(llm: LlamaLlm, name: str) -> None:
    (scenario,) = [s for s in ev.load_scenarios() if s.name == name]
    greeting, turns = await ev.run_scenario(scenario, llm)
    result = ev.score(scenario, greeting, turns)
    assert result.passed, result.failures
    assert result.violations == []
