"""The lab tests' fixtures: the micro encoder's config.json and a corpus of six noisy tones."""

from __future__ import annotations

import numpy as np
import pytest

from speechprobe.lab.corpus import Corpus, from_arrays

from .micro import micro_config


@pytest.fixture(scope="module")
def arch(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("arch") / "config.json"
    micro_config().to_json_file(str(path))
    return str(path)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    return from_arrays(
        [(0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(len(t))) for f in (110, 180, 250, 320, 400, 500)]
    )
