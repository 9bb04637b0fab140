from __future__ import annotations

from agent.audio.segmenter import Segment, Segmenter, SegmenterSettings, should_interrupt

FRAME = 32


def run(seg: Segmenter, pattern: list[tuple[float, int]]) -> list[tuple[int, Segment]]:
    """Feeds (probability, n_frames) runs; returns (ms, event) pairs."""
    out: list[tuple[int, Segment]] = []
    t = 0
    for prob, frames in pattern:
        for _ in range(frames):
            t += FRAME
            out += [(t, e) for e in seg.feed(prob, FRAME)]
    return out


def test_a_turn_starts_and_ends() -> None:
    seg = Segmenter(SegmenterSettings(min_speech_ms=192, likely_over_ms=288, end_silence_ms=704))
    events = run(seg, [(0.0, 10), (0.9, 30), (0.1, 30)])
    assert [e for _, e in events] == [
        Segment.SPEECH_STARTED,
        Segment.TURN_LIKELY_OVER,
        Segment.TURN_OVER,
    ]
    times = dict((e, t) for t, e in events)
    assert times[Segment.SPEECH_STARTED] == (10 + 6) * FRAME
    assert times[Segment.TURN_LIKELY_OVER] == (40 + 9) * FRAME
    assert times[Segment.TURN_OVER] == (40 + 22) * FRAME
    assert not seg.in_turn


def test_clicks_and_backchannels_below_min_speech_are_ignored() -> None:
    seg = Segmenter(SegmenterSettings(min_speech_ms=200))
    assert run(seg, [(0.9, 3), (0.0, 5), (0.9, 4), (0.0, 40)]) == []


def test_a_pause_mid_sentence_resumes_the_turn() -> None:
    seg = Segmenter(SegmenterSettings(min_speech_ms=96, likely_over_ms=288, end_silence_ms=704))
    events = [e for _, e in run(seg, [(0.9, 10), (0.0, 12), (0.9, 10), (0.0, 30)])]
    assert events == [
        Segment.SPEECH_STARTED,
        Segment.TURN_LIKELY_OVER,
        Segment.TURN_RESUMED,
        Segment.TURN_LIKELY_OVER,
        Segment.TURN_OVER,
    ]


def test_hysteresis_keeps_a_soft_word_inside_the_turn() -> None:
    seg = Segmenter(SegmenterSettings(threshold=0.5, release_threshold=0.3, end_silence_ms=320))
    events = [e for _, e in run(seg, [(0.9, 10), (0.4, 20), (0.0, 12)])]
    assert events.count(Segment.TURN_OVER) == 1
    assert seg.speech_ms == 0


def test_should_interrupt() -> None:
    assert not should_interrupt(300, bot_speaking=True)
    assert should_interrupt(450, bot_speaking=True)
    assert not should_interrupt(5000, bot_speaking=False)


def test_a_flickering_onset_still_starts_the_turn() -> None:
    # A first word hovering around the threshold: short dips do not restart the count.
    seg = Segmenter(SegmenterSettings(min_speech_ms=200, onset_gap_ms=96))
    onset = [(0.6, 3), (0.3, 1), (0.6, 2), (0.2, 2), (0.7, 2)]
    events = run(seg, [(0.0, 5), *onset, (0.9, 10), (0.0, 30)])
    assert events[0] == ((5 + 3 + 1 + 2 + 2 + 2) * FRAME, Segment.SPEECH_STARTED)


def test_a_gap_longer_than_the_onset_gap_forgets_the_candidate() -> None:
    seg = Segmenter(SegmenterSettings(min_speech_ms=200, onset_gap_ms=96))
    assert run(seg, [(0.9, 5), (0.0, 4), (0.9, 5), (0.0, 40)]) == []


def test_a_soft_word_counts_from_its_first_loud_frame() -> None:
    # Once a candidate has begun, frames down to the release threshold count as speech.
    seg = Segmenter(SegmenterSettings(threshold=0.5, release_threshold=0.35, min_speech_ms=160))
    soft = [(0.55, 1), (0.45, 4), (0.2, 10)]
    assert [e for _, e in run(seg, soft)][:1] == [Segment.SPEECH_STARTED]
    quiet = Segmenter(SegmenterSettings(threshold=0.5, release_threshold=0.35, min_speech_ms=160))
    # ... but never start one on their own.
    assert run(quiet, [(0.45, 10), (0.0, 20)]) == []
