"""Spoken digits synthesised offline with eSpeak NG (the ``espeakng-loader`` wheel ships ``libespeak-ng.so`` and its
voice data; called through ctypes, no system package needed).

Twenty words, the digits zero to nine in English and in German (as in the Spiking Heidelberg Digits: classes 0-9
English, 10-19 German). A *speaker* is an eSpeak NG voice variant (``m3``, ``f2``, ``Alex``, ...), speaking English
through the ``en-us`` voice and German through ``de``, so every speaker says every word. What a recording set
varies is drawn per recording from a seeded generator: speaking rate, pitch, pitch range, loudness, onset time
and background noise at a signal-to-noise ratio (:class:`Utterance`). Which speakers are test speakers is fixed
(:data:`TEST_SPEAKERS`): they never occur in training, as in SHD's split.

This is synthetic speech from a formant synthesiser, not human speakers: voices differ by formant shifts and
prosody, not by accent, age or recording conditions.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

from pipeline.data import forked
from pipeline.data.layout import DataError

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
CLASSES = tuple(f"english-{w}" for w in ENGLISH) + tuple(f"german-{w}" for w in GERMAN)
TRAIN_SPEAKERS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "Alex", "Andy", "Annie",
                  "Denis", "Gene", "Hugo", "Lee")
TEST_SPEAKERS = ("m8", "f5", "Mario", "Michael", "belinda", "david")
SAMPLE_RATE = 22050        # eSpeak NG's output


@dataclass(frozen=True)
class Utterance:
    """One recording to synthesise: a word by a speaker, and how it is said and heard."""
    label: int                 # index into CLASSES
    speaker: str
    rate: int                  # words per minute (espeakRATE)
    pitch: int                 # 0..100 (espeakPITCH)
    pitch_range: int           # 0..100 (espeakRANGE)
    gain: float                # loudness: the waveform is scaled by this
    onset_s: float             # silence before the word
    snr_db: float              # background noise; inf: none

    @property
    def voice(self) -> str:
        return f"{'en-us' if self.label < 10 else 'de'}+{self.speaker}"

    @property
    def word(self) -> str:
        return (ENGLISH + GERMAN)[self.label]


def plan(speakers: tuple[str, ...], repeats: int, rng: np.random.Generator) -> list[Utterance]:
    """Every word by every speaker ``repeats`` times, each with its own prosody and noise."""
    out = []
    for speaker in speakers:
        for label in range(len(CLASSES)):
            for _ in range(repeats):
                out.append(Utterance(label, speaker, int(rng.integers(120, 221)), int(rng.integers(25, 76)),
                                     int(rng.integers(20, 81)), float(rng.uniform(0.3, 1.0)),
                                     float(rng.uniform(0.0, 0.2)),
                                     float(rng.choice([np.inf, rng.uniform(5.0, 30.0)], p=[0.25, 0.75]))))
    return out


class _Engine:
    """The eSpeak NG library, initialised once per process, synthesising synchronously into a buffer."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (ImportError, OSError, RuntimeError) as e:
            raise DataError(f"eSpeak NG cannot be loaded ({' '.join(str(e).split())}): install the pip wheel "
                            "espeakng-loader (./setup.sh does)") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(2, 0, data.encode(), 0)          # 2: AUDIO_OUTPUT_SYNCHRONOUS
        if rate != SAMPLE_RATE:
            raise DataError(f"eSpeak NG did not initialise (it answered {rate}, expected {SAMPLE_RATE} Hz)")
        self.lib, self.chunks = lib, []
        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self.callback = callback(self._collect)          # kept alive as long as the engine
        lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
        return 0

    def say(self, voice: str, word: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"eSpeak NG has no voice {voice!r}")
        # eSpeak NG seeds its own random generator (the jitter of voices such as f2, f3, f5) with the time at
        # espeak_Initialize: seed it per utterance, or a recording depends on when its process started.
        self.lib.espeak_ng_SetRandSeed(seed)
        for parameter, value in ((1, rate), (3, pitch), (4, pitch_range)):    # espeakRATE, PITCH, RANGE
            self.lib.espeak_SetParameter(parameter, value, 0)
        self.chunks = []
        text = word.encode() + b"\0"
        self.lib.espeak_Synth(text, len(text), 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)


@functools.lru_cache(maxsize=None)
def _engine() -> _Engine:
    return _Engine()


def _say_from_fresh_state(voice: str, word: str, rate: int, pitch: int, pitch_range: int,
                          seed: int = 0) -> np.ndarray:
    """``_Engine.say`` in a child forked from the initialised engine, which itself never synthesises.

    eSpeak NG carries state from one utterance to the next (measured: the same word said three times in a row
    gave three different waveforms, correlation 0.39, lengths 10,837, 10,843 and 10,841 samples; the same sequence
    again in a new process). Forked from the same untouched engine, every utterance starts from the same state,
    so a recording depends on its own parameters only (about 4 ms per fork); ``seed`` seeds eSpeak's random
    generator, which it otherwise seeds with the time (measured: the f5 voice gave a different waveform in each
    new process)."""
    engine = _engine()
    try:
        data = forked.run(lambda: engine.say(voice, word, rate, pitch, pitch_range, seed).astype(np.float32)
                          .tobytes(), DataError)
    except forked.ChildFailed as e:
        raise DataError(f"eSpeak NG failed to synthesise {word!r} with voice {voice!r} ({e.how})") from None
    return np.frombuffer(data, np.float32).copy()


def synthesise(u: Utterance, rng: np.random.Generator) -> np.ndarray:
    """The waveform (float32, SAMPLE_RATE) of ``u``: onset silence, the word at its loudness, then noise at its
    SNR (white noise, its power set against the word's mean power)."""
    seed = int(rng.integers(2**31))                  # eSpeak's own jitter, drawn like the noise from the recording's
    word = _say_from_fresh_state(u.voice, u.word, u.rate, u.pitch, u.pitch_range, seed) * u.gain
    wave = np.concatenate([np.zeros(int(u.onset_s * SAMPLE_RATE), np.float32), word])
    if np.isfinite(u.snr_db) and len(word):
        power = float(np.mean(word.astype(np.float64) ** 2))
        wave = wave + rng.normal(0.0, np.sqrt(power / 10 ** (u.snr_db / 10)), len(wave)).astype(np.float32)
    return wave
