"""Word error rate and speed of the configured Whisper on real telephone speech.

The speech is Asterisk's own English prompts (Debian's asterisk-core-sounds-en-wav:
human recordings at 8 kHz, as a call delivers them), with their texts from
core-sounds-en.txt.gz. Both sides are normalised the same way (case,
punctuation, common contractions, numbers up to twenty) before words are
compared. The last line is one JSON object.

    scripts/bench-stt [--prompts 150] [--config config.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import sys
import time
import wave
from pathlib import Path

from agent.audio.resample import resample
from agent.config import load_settings
from agent.speech.whisper import WhisperStt

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
CONTRACTIONS = {
    "i'm": "i am", "you're": "you are", "we're": "we are", "they're": "they are",
    "it's": "it is", "that's": "that is", "there's": "there is", "what's": "what is",
    "let's": "let us", "don't": "do not", "doesn't": "does not", "can't": "cannot",
    "won't": "will not", "isn't": "is not", "aren't": "are not", "i'll": "i will",
    "you'll": "you will", "we'll": "we will", "i've": "i have", "you've": "you have",
    "couldn't": "could not", "wasn't": "was not", "didn't": "did not",
}  # fmt: skip
NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def normalise(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words: list[str] = []
    for word in text.split():
        word = word.strip("'")
        if word.isdigit() and int(word) <= 20:
            words.append(NUMBERS[int(word)])
        elif word in CONTRACTIONS:
            words += CONTRACTIONS[word].split()
        elif word:
            words.append(word)
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def prompts(limit: int) -> list[tuple[Path, str]]:
    if not TEXTS.exists() or not SOUNDS.exists():
        raise SystemExit(
            "the prompts are missing: apt-get install asterisk-core-sounds-en-wav "
            "asterisk-core-sounds-en (scripts/bench-stt does it when run as root)"
        )
    out = []
    with gzip.open(TEXTS, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for line in lines:
        name, _, text = line.partition(":")
        wav = SOUNDS / f"{name.strip()}.wav"
        if line.startswith(";") or not text.strip() or "[" in text or not wav.exists():
            continue
        if len(normalise(text)) >= 2:
            out.append((wav, text.strip()))
    return out[:limit]


async def run(limit: int, config: Path | None) -> dict[str, float]:
    settings = load_settings(config)
    stt = WhisperStt(settings.speech.stt)
    await stt.warm_up()
    errors = words = 0
    audio_s = compute_s = 0.0
    items = prompts(limit)
    for wav, text in items:
        with wave.open(str(wav), "rb") as w:
            pcm = w.readframes(w.getnframes())
            rate = w.getframerate()
        started = time.perf_counter()
        result = await stt.transcribe(resample(pcm, rate, 16000))
        compute_s += time.perf_counter() - started
        audio_s += len(pcm) / 2 / rate
        ref, hyp = normalise(text), normalise(result.text)
        errors += edit_distance(ref, hyp)
        words += len(ref)
    return {
        "prompts": len(items),
        "words": words,
        "wer": errors / words,
        "real_time_factor": compute_s / audio_s,
        "audio_s": audio_s,
        "median_prompt_s": compute_s / len(items),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=150)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args()
    figures = asyncio.run(run(args.prompts, args.config))
    print(
        f"{figures['prompts']} prompts, {figures['words']} words: WER "
        f"{100 * figures['wer']:.1f} %, real-time factor {figures['real_time_factor']:.3f}"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
