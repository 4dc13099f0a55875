"""The objective lab: pre-train one wav2vec2-style encoder with different objectives on the same audio, then
probe what each learned (``speechprobe pretrain``, ``speechprobe ablate``; docs/lab.md).

Modules: ``config`` (the settings, declared once as fields), ``arch`` (tiny / small / base configurations),
``corpus`` (the training audio and its seeded crops), ``targets`` (HuBERT k-means targets), ``objectives``
(contrastive, masked, random), ``checkpoint`` (atomic training state), ``train`` (the loop), ``seeds``
(seed-level statistics), ``ablate`` and ``ablate_report`` (the ablation and its report).
"""
