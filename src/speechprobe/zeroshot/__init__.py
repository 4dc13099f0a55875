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

# Each name's module, imported on first use (the backends load torch): `import speechprobe.zeroshot` stays light.
_MODULES = {
    "base": "DecoderState Encoded ZeroShotBackend",
    "cache": "ResponseCache response_key",
    "calibration": "ContentFree Verbalised calibrated content_free_inputs",
    "compare": "refresh_zeroshot_tables sensitivity_table write_zeroshot_outputs",
    "diagnostics": "answer_diagnostics",
    "engines": "Questions answer_batch",
    "link": "MODE_PREFERENCE bootstrap_correlation correlations diagnostics_table zeroshot_vs_probe",
    "..figures.zeroshot_scatter": "plot_zeroshot_vs_probe",
    "models": "capable_models load_backend resolve_zeroshot_model",
    "native": "native_targets",
    "parser": "AnswerParser ParseResult normalise parse_answer synonyms_for",
    "prompts": "BUILTIN PromptTemplate check_template load_template_file resolve_prompts",
    "responses": "FOLD probe_name",
    "config": "PROMPT_AS BackendOptions ZeroShotConfig",
    "runner": "MODES evaluate_task run_zeroshot",
    "scoring": "LabelScores greedy_generate score_labels score_prompts zeroshot_metrics",
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names.split()}

__all__ = [*_WHERE]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = _WHERE[name]
    return getattr(importlib.import_module(module if module.startswith(".") else f".{module}", __name__), name)
