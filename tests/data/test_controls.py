"""The cue-erasure control renders the same bytes every time (Praat's PSOLA draws random numbers)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from speechprobe.data.synthetic.generate import render
from speechprobe.data.synthetic.suite import _GENERATORS

pytest.importorskip("parselmouth")


def test_pitch_normalised_gender_is_deterministic_in_threads():
    items = _GENERATORS["gender_pitchnorm"](2, np.random.default_rng(0))[:4]
    first = [render(item) for item in items]
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(render, items + items))
    for i, audio in enumerate(again):
        np.testing.assert_array_equal(audio, first[i % len(items)])
