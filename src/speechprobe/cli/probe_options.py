"""Options of the cross-validation, uncertainty and probe settings (``speechprobe run`` and ``probe``).

Named as the :class:`speechprobe.config.RunConfig` fields they set; definitions in docs/statistics.md.
"""

from __future__ import annotations

import typer

from ..config import MLP_EARLY_STOPPING_MIN_TRAIN

RepeatsOpt = typer.Option(1, "--repeats", help="Repeated cross-validation: R reshuffled partitions of --folds folds.")
CUE_REPEATS_HELP = "Cue probes, erasure and all-layers on the first N repeats only"
CueRepeatsOpt = typer.Option(None, "--cue-repeats", help=CUE_REPEATS_HELP + " [default: all].")
CvOpt = typer.Option("kfold", "--cv", help="kfold (stratified, grouped by speaker when groups exist) or logo.")
UngroupedOpt = typer.Option(
    False, "--ungrouped", help="Folds ignore the speaker/group column (speaker leakage may inflate scores)."
)
RareClassesOpt = typer.Option(
    "drop",
    "--rare-classes",
    help="Classes with fewer clips (or speakers) than the folds need: drop (with a counted reason; they leave the "
    "Macro-F1 label set) or merge[:NAME] (one rest class, default 'other').",
)
GroupNameOpt = typer.Option(
    None, "--group-name", help="What a group is (speaker, language, dialogue, word) [default: the task's declaration]."
)
BootstrapOpt = typer.Option(1000, "--bootstrap", help="Bootstrap resamples over the unit: clips or groups (0: skip).")
KnnKOpt = typer.Option(5, "--knn-k", help="KNN probe: neighbours.")
MlpHiddenOpt = typer.Option(256, "--mlp-hidden", help="MLP probe: hidden units.")
MlpAlphaOpt = typer.Option(1e-4, "--mlp-alpha", help="MLP probe: L2 penalty.")
MlpEpochsOpt = typer.Option(200, "--mlp-epochs", help="MLP probe: maximum epochs (max_iter).")
MlpSolverOpt = typer.Option("adam", "--mlp-solver", help="MLP probe: adam, sgd or lbfgs.")
MlpEarlyStoppingOpt = typer.Option(
    True,
    "--mlp-early-stopping/--no-mlp-early-stopping",
    help="MLP probe: stop on a 10 % validation split of each large enough training fold (--no-...: everywhere "
    "the training-loss rule, at most --mlp-epochs).",
)
MlpEarlyStoppingMinOpt = typer.Option(
    MLP_EARLY_STOPPING_MIN_TRAIN,
    "--mlp-early-stopping-min-train",
    help="MLP probe: early stopping only on training folds of at least this many items (smaller ones: loss rule).",
)
LinearCOpt = typer.Option(1.0, "--linear-c", help="Linear probe: inverse L2 strength C.")
TuneOpt = typer.Option(
    False, "--tune/--no-tune", help="Nested CV: choose k, MLP alpha and linear C on inner folds of each training part."
)


def keep_run_value(option):
    """The same option with no default: `speechprobe probe RUN` keeps RUN's value unless it is given."""
    return typer.Option(None, *option.param_decls, help=option.help)
