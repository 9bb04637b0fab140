"""Silero VAD (the copy that ships inside faster-whisper), streamed per call.

The ONNX session is loaded once and shared; each call keeps its own recurrent
state and the last 64 samples of context. One 32 ms window costs well under a
millisecond, so it runs inline on the audio path rather than on a worker thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from agent.speech.protocols import VAD_WINDOW_SAMPLES
from agent.speech.weights import WeightsError

CONTEXT = 64
# Silero's recurrent state drifts during a long silence: after some seconds of it the
# next words score far lower (measured: "Stop calling me." after 12 s of silence stays
# under 0.5 for its first second, against 0.8 after 1 s). The state is therefore put
# back after every second of quiet to where one second of silence leaves it (a state of
# zeros, never fed, is less sensitive than that).
QUIET_RESET_WINDOWS = 31  # about 1 s of 32 ms windows
QUIET = 0.1


def silero_path() -> Path:
    import faster_whisper

    path = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    if not path.exists():
        raise WeightsError(f"the Silero VAD model is missing at {path}; reinstall faster-whisper")
    return path


class SileroVad:
    """The shared model."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path or silero_path()), providers=["CPUExecutionProvider"], sess_options=opts
        )

        self._rested = self._state_after_silence()

    def _state_after_silence(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        x = np.zeros((1, CONTEXT + VAD_WINDOW_SAMPLES), dtype=np.float32)
        for _ in range(QUIET_RESET_WINDOWS):
            _, h, c = self._session.run(None, {"input": x, "h": h, "c": c})
        return h, c

    def stream(self) -> SileroVadStream:
        return SileroVadStream(self._session, self._rested)


class SileroVadStream:
    """One call's detector state."""

    def __init__(
        self,
        session: object,
        rested: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    ) -> None:
        self._session = session
        self._rested = rested
        self._h, self._c = rested
        self._context: npt.NDArray[np.float32] = np.zeros(CONTEXT, dtype=np.float32)
        self._quiet = 0

    def probability(self, window: bytes) -> float:
        samples = np.frombuffer(window, dtype="<i2").astype(np.float32) / 32768.0
        if len(samples) != VAD_WINDOW_SAMPLES:
            samples = np.resize(samples, VAD_WINDOW_SAMPLES)
        x = np.concatenate([self._context, samples])[None, :]
        out, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
            None, {"input": x, "h": self._h, "c": self._c}
        )
        self._context = samples[-CONTEXT:]
        p = float(np.asarray(out).reshape(-1)[0])
        self._quiet = self._quiet + 1 if p < QUIET else 0
        if self._quiet >= QUIET_RESET_WINDOWS:
            self._h, self._c = self._rested
            self._quiet = 0
        return p
