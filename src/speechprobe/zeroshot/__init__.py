"""Zero-shot evaluation: prompt speech models with a text decoder and score their answers honestly.

Entry point: :func:`run_zeroshot` with a :class:`ZeroShotConfig` (the ``speechprobe zeroshot``
command). Pieces: prompt templates (:mod:`.prompts`), the answer parser (:mod:`.parser`), likelihood
and generation (:mod:`.scoring`), phrasings, content-free inputs and calibration (:mod:`.calibration`),
native heads (:mod:`.native`), one backend per model family (:mod:`.whisper`, :mod:`.qwen2_audio`,
:mod:`.seamless`), response and result rows (:mod:`.responses`), the response cache (:mod:`.cache`) and
prompt sensitivity (:mod:`.compare`), answer diagnostics (:mod:`.diagnostics`) and the link to
probe scores (:mod:`.link`).
"""

from __future__ import annotations

# Each name's module, imported on first use (the backends load torch): `import speechprobe.zeroshot` stays light.
_WHERE = {
    "DecoderState": "base",
    "Encoded": "base",
    "ZeroShotBackend": "base",
    "ResponseCache": "cache",
    "response_key": "cache",
    "ContentFree": "calibration",
    "Verbalised": "calibration",
    "calibrated": "calibration",
    "content_free_inputs": "calibration",
    "refresh_zeroshot_tables": "compare",
    "sensitivity_table": "compare",
    "write_zeroshot_outputs": "compare",
    "answer_diagnostics": "diagnostics",
    "Questions": "engines",
    "answer_batch": "engines",
    "MODE_PREFERENCE": "link",
    "bootstrap_correlation": "link",
    "correlations": "link",
    "diagnostics_table": "link",
    "plot_zeroshot_vs_probe": "link",
    "zeroshot_vs_probe": "link",
    "capable_models": "models",
    "load_backend": "models",
    "resolve_zeroshot_model": "models",
    "native_targets": "native",
    "AnswerParser": "parser",
    "ParseResult": "parser",
    "normalise": "parser",
    "parse_answer": "parser",
    "synonyms_for": "parser",
    "BUILTIN": "prompts",
    "PromptTemplate": "prompts",
    "check_template": "prompts",
    "load_template_file": "prompts",
    "resolve_prompts": "prompts",
    "FOLD": "responses",
    "probe_name": "responses",
    "MODES": "config",
    "ZeroShotConfig": "config",
    "evaluate_task": "runner",
    "run_zeroshot": "runner",
    "LabelScores": "scoring",
    "greedy_generate": "scoring",
    "score_labels": "scoring",
    "score_prompts": "scoring",
    "zeroshot_metrics": "scoring",
}

__all__ = [*_WHERE]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
