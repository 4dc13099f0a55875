"""The fine-tuning ceiling (issue 27; docs/finetune.md): ``head``, ``top-k`` and ``lora`` trained on the run's own
folds, scored like the probes, written as ``finetune.csv`` beside results.csv.

Modules: :mod:`.settings` (``FinetuneSettings``, light), :mod:`.methods` (the attention-pooling head, freezing and
LoRA), :mod:`.data` (audio read back, the validation split by group, class weights, the shuffled-label control),
:mod:`.train` (one fold), :mod:`.folds` (where folds train: here or on Ray actors),
:mod:`.outputs` (fold files, tables) and :mod:`.stage` (``run_finetune``, ``finish``).
Nothing is imported here, so the settings load without torch.
"""
