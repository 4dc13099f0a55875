"""Zero-shot evaluation: prompt speech models with a text decoder and score their answers honestly.

Entry point: :func:`run_zeroshot` with a :class:`ZeroShotConfig` (the ``speechprobe zeroshot``
command). Pieces: the modes (:mod:`.modes`), prompt templates (:mod:`.prompts`), the answer parser
(:mod:`.parser`), likelihood and generation (:mod:`.scoring`), phrasings, content-free inputs and
calibration (:mod:`.calibration`), native heads (:mod:`.native`), one backend per model family
(:mod:`.whisper`, :mod:`.qwen2_audio`, :mod:`.seamless`), response and result rows (:mod:`.responses`),
the response cache (:mod:`.cache`) and prompt sensitivity (:mod:`.compare`), answer diagnostics
(:mod:`.diagnostics`) and the link to probe scores (:mod:`.link`).
"""

from __future__ import annotations

from ..figures.zeroshot_scatter import plot_zeroshot_vs_probe
from .base import BackendOptions, DecoderState, Encoded, ZeroShotBackend
from .cache import ResponseCache, response_key
from .calibration import ContentFree, Verbalised, calibrated, content_free_inputs
from .compare import refresh_zeroshot_tables, sensitivity_table, write_zeroshot_outputs
from .diagnostics import answer_diagnostics
from .engines import Questions, answer_batch
from .link import (
    MODE_PREFERENCE,
    bootstrap_correlation,
    correlations,
    diagnostics_table,
    zeroshot_vs_probe,
)
from .models import capable_models, load_backend, resolve_zeroshot_model
from .native import native_targets
from .parser import AnswerParser, ParseResult, normalise, parse_answer, synonyms_for
from .prompts import BUILTIN, PromptTemplate, check_template, load_template_file, resolve_prompts
from .responses import FOLD, probe_name
from .runner import MODES, ZeroShotConfig, evaluate_task, run_zeroshot
from .scoring import LabelScores, greedy_generate, score_labels, score_prompts, zeroshot_metrics

__all__ = [
    "MODE_PREFERENCE",
    "answer_diagnostics",
    "diagnostics_table",
    "BUILTIN",
    "ContentFree",
    "Questions",
    "answer_batch",
    "Verbalised",
    "calibrated",
    "content_free_inputs",
    "native_targets",
    "score_prompts",
    "FOLD",
    "MODES",
    "AnswerParser",
    "DecoderState",
    "Encoded",
    "LabelScores",
    "ParseResult",
    "PromptTemplate",
    "ResponseCache",
    "BackendOptions",
    "ZeroShotBackend",
    "ZeroShotConfig",
    "bootstrap_correlation",
    "capable_models",
    "check_template",
    "correlations",
    "evaluate_task",
    "greedy_generate",
    "load_backend",
    "load_template_file",
    "normalise",
    "parse_answer",
    "plot_zeroshot_vs_probe",
    "probe_name",
    "resolve_prompts",
    "resolve_zeroshot_model",
    "response_key",
    "refresh_zeroshot_tables",
    "run_zeroshot",
    "score_labels",
    "sensitivity_table",
    "synonyms_for",
    "write_zeroshot_outputs",
    "zeroshot_metrics",
    "zeroshot_vs_probe",
]
