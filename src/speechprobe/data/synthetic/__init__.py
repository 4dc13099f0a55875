"""Built-in synthetic paralinguistic suite, generated offline with eSpeak NG from a seed."""

from .controls import CONTROL_TASKS  # registers the control tasks (gender_pitchnorm)
from .generate import ensure_task, generate_task, render
from .lexical import LEXICAL_TASKS  # registers the lexical tasks (spoken_word, language)
from .suite import (
    DEFAULT_N_PER_CLASS,
    EXTENDED_TASKS,
    GENERATOR_VERSION,
    SAMPLE_RATE,
    SYNTHETIC_TASKS,
)

__all__ = [
    "CONTROL_TASKS",
    "DEFAULT_N_PER_CLASS",
    "EXTENDED_TASKS",
    "GENERATOR_VERSION",
    "LEXICAL_TASKS",
    "SAMPLE_RATE",
    "SYNTHETIC_TASKS",
    "ensure_task",
    "generate_task",
    "render",
]
