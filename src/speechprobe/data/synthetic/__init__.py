"""Built-in synthetic paralinguistic suite, generated offline with eSpeak NG from a seed."""

from .suite import (
    DEFAULT_N_PER_CLASS,
    EXTENDED_TASKS,
    GENERATOR_VERSION,
    SAMPLE_RATE,
    SYNTHETIC_TASKS,
    generate_task,
)

__all__ = [
    "DEFAULT_N_PER_CLASS",
    "EXTENDED_TASKS",
    "GENERATOR_VERSION",
    "SAMPLE_RATE",
    "SYNTHETIC_TASKS",
    "generate_task",
]
