"""Fine-tuning's fold loop on a toy trainable encoder (no checkpoint): which items reach each part, the
validation split by group, the shuffled-label control."""

import numpy as np
import pytest
import torch
from ft_threads import one_thread  # noqa: F401

from speechprobe.finetune.data import class_weights, shuffled, validation_split
from speechprobe.finetune.methods import AttentionHead, classifier, load_trained, prepare, trained_state
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.finetune.train import FoldData, Inputs, train_fold
from speechprobe.models.trainable import Trainable
from speechprobe.probes import make_cv

DIM, RATE = 8, 8  # one "frame" of DIM samples; RATE samples per second, so a frame costs 1 s of batch budget


def toy_trainable() -> Trainable:
    """Layers: the audio cut into DIM-sample frames (layer 0), then the outputs of two residual linear blocks."""
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([torch.nn.Linear(DIM, DIM) for _ in range(2)])

    def frames(batch):
        lengths = torch.tensor([len(a) // DIM for a in batch])
        x = torch.zeros(len(batch), int(lengths.max()), DIM)
        for i, a in enumerate(batch):
            x[i, : lengths[i]] = torch.from_numpy(np.asarray(a[: lengths[i] * DIM]).reshape(-1, DIM))
        layers = [x]
        for block in blocks:
            layers.append(layers[-1] + block(layers[-1]))
        return layers, lengths

    return Trainable(blocks, blocks, (), DIM, frames, lambda on: None, 3)


def toy_task(n_per_class=20, classes=3, seed=0):
    """Clips whose frames carry their class in one coordinate (plus noise); 10 speakers crossing the classes."""
    rng = np.random.default_rng(seed)
    audio, codes, groups = [], [], []
    for c in range(classes):
        for i in range(n_per_class):
            frames = 0.3 * rng.standard_normal((int(rng.integers(3, 7)), DIM))
            frames[:, c] += 1.5
            audio.append(frames.ravel().astype(np.float32))
            codes.append(c)
            groups.append(f"spk{i % 10}")
    return audio, np.array(codes), np.array(groups)


def fit_folds(method: str, shuffle: bool, epochs: int = 12, layers: str = "all", folds=None, trainable=None, task=None):
    audio, codes, groups = task or toy_task()
    trainable = trainable or toy_trainable()
    trained = prepare(trainable, method, FinetuneSettings(top_k=1))
    model = classifier(trainable, 3, trained, seed=0, layers=layers)
    init = trained_state(model)
    inputs = Inputs(model, audio, batch_seconds=40, rate=RATE)
    plan = make_cv(codes.astype(str), groups, 5, 0)
    results = []
    for j, (train, test) in enumerate(plan.folds[: folds or len(plan.folds)]):
        fit, val = validation_split(train, codes, groups, 0.2, j)
        train_codes = shuffled(codes, train, j) if shuffle else codes
        load_trained(model, init)
        data = FoldData(j, fit, val, test, train_codes, codes)
        kw = dict(epochs=epochs, patience=4, lrs=(1e-2, 1e-3), seed=j, device=torch.device("cpu"), dtype=None)
        results.append((data, train_fold(inputs, data, 3, **kw)))
    return results


@pytest.fixture(scope="module")
def real_folds():
    return fit_folds("top-k", shuffle=False)


def test_no_test_clip_reaches_training_or_early_stopping(real_folds):
    for data, result in real_folds:
        fit, val, test = set(result.used["fit"]), set(result.used["val"]), set(result.used["test"])
        assert fit == set(data.fit.tolist()) and val == set(data.val.tolist()) and test == set(data.test.tolist())
        assert not (fit | val) & test and not fit & val


def test_real_labels_are_learnt(real_folds):
    f1 = [r.scores["macro_f1"] for _, r in real_folds]
    assert np.mean(f1) > 0.9


def test_shuffled_labels_stay_near_chance():
    """Training labels permuted inside each training fold, test labels true: chance is 1/3 here."""
    f1 = [r.scores["macro_f1"] for _, r in fit_folds("head", shuffle=True)]
    assert np.mean(f1) < 0.55


def test_validation_split_keeps_groups_whole_and_never_leaves_the_training_fold():
    audio, codes, groups = toy_task()
    train, _ = make_cv(codes.astype(str), groups, 5, 0).folds[0]
    fit, val = validation_split(train, codes, groups, 0.2, 0)
    assert sorted(np.concatenate([fit, val]).tolist()) == sorted(train.tolist())
    assert not set(groups[fit]) & set(groups[val])
    assert 0.1 < len(val) / len(train) < 0.35


def test_class_weights_balance_and_shuffle_permutes_only_the_given_items():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    codes = np.arange(10)
    out = shuffled(codes, [2, 3, 4, 5], seed=0)
    assert out[[0, 1, 6, 7, 8, 9]].tolist() == [0, 1, 6, 7, 8, 9]
    assert sorted(out[2:6].tolist()) == [2, 3, 4, 5] and out[2:6].tolist() != [2, 3, 4, 5]


def test_keep_checkpoints_writes_the_folds_trained_tensors_as_safetensors(real_folds, tmp_path):
    from safetensors.torch import load_file

    from speechprobe.finetune.outputs import fold_file, read_folds, write_fold

    _, result = real_folds[0]
    key = {"model": "toy", "task": "t", "probe": "ft-top-k", "layer": 2}
    write_fold(tmp_path, key, 0, result, keep_checkpoint=False)
    assert not fold_file(tmp_path, "toy", "t", "ft-top-k", 0).with_suffix(".safetensors").exists()
    write_fold(tmp_path, key, 0, result, keep_checkpoint=True)
    saved = load_file(fold_file(tmp_path, "toy", "t", "ft-top-k", 0).with_suffix(".safetensors"))
    assert saved.keys() == result.state.keys() and any(k.startswith("encoder.") for k in saved)
    assert all(torch.equal(saved[k], v) for k, v in result.state.items())
    (record,) = read_folds(tmp_path)
    assert record["scores"] == result.scores and record["items"] == result.used


@pytest.mark.parametrize("method", ["head", "top-k"])
def test_early_stopping_and_the_chosen_epoch_do_not_depend_on_the_test_fold(method):
    """The same fold trained twice, the second time with the test clips' audio replaced by noise of other lengths
    and their labels permuted: every epoch's fit loss and validation score, the chosen epoch and its weights are the
    same; only the test scores move."""
    audio, codes, groups = toy_task()
    train, test = make_cv(codes.astype(str), groups, 5, 0).folds[0]
    fit, val = validation_split(train, codes, groups, 0.2, 0)
    noisy, wrong = list(audio), codes.copy()
    rng = np.random.default_rng(1)
    for i in test:
        noisy[i] = rng.standard_normal(DIM * int(rng.integers(2, 9))).astype(np.float32)
    wrong[test] = (codes[test] + 1) % 3
    runs = []
    for clips, truth in ((audio, codes), (noisy, wrong)):
        trainable = toy_trainable()
        model = classifier(trainable, 3, prepare(trainable, method, FinetuneSettings(top_k=1)), seed=0)
        inputs = Inputs(model, clips, batch_seconds=40, rate=RATE)
        data = FoldData(0, fit, val, test, codes, truth)
        kw = dict(epochs=6, patience=2, lrs=(1e-2, 1e-3), seed=0, device=torch.device("cpu"), dtype=None)
        runs.append(train_fold(inputs, data, 3, **kw))
    kept, moved = runs
    assert moved.curve == kept.curve and moved.best_epoch == kept.best_epoch and len(kept.curve) >= 4
    assert moved.state.keys() == kept.state.keys()
    assert all(torch.equal(moved.state[k], v) for k, v in kept.state.items())
    assert kept.scores["macro_f1"] > 0.8 and moved.scores["macro_f1"] < 0.5  # the test fold was scored, and only then


@pytest.mark.parametrize("n_layers", [1, 3])
def test_the_attention_head_reads_real_frames_only(n_layers):
    """Whatever sits in the padding (here huge values), a clip's logits are those of the clip alone."""
    torch.manual_seed(0)
    head = AttentionHead(DIM, 3, n_layers=n_layers).eval()
    if n_layers > 1:
        head.layer_logits.data = torch.tensor([0.5, -1.0, 2.0])
    short, long = torch.randn(n_layers, 3, DIM), torch.randn(n_layers, 7, DIM)
    batch = torch.full((n_layers, 2, 7, DIM), 1e4)
    batch[:, 0, :3], batch[:, 1] = short, long
    together = head(batch, torch.tensor([3, 7]))
    alone = head(short[:, None], torch.tensor([3]))
    assert torch.allclose(together[0], alone[0], atol=1e-5) and torch.allclose(
        together[1], head(long[:, None], torch.tensor([7]))[0], atol=1e-5
    )
    batch[:, 0, 3:] = -1e4  # other padding: the same logits
    assert torch.allclose(head(batch, torch.tensor([3, 7]))[0], alone[0], atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def middle_trainable() -> Trainable:
    """Three layers of which only the middle one carries the class (coordinates 0-2 of the toy task's frames); the
    others are the same frames with those coordinates zeroed."""
    encoder = torch.nn.Linear(DIM, DIM)  # holds no weight the layers use: the encoder stays as it is
    frames = toy_trainable().frames

    def layers(batch):
        (x, *_), lengths = frames(batch)
        blind = x.clone()
        blind[..., :3] = 0
        return [blind, x, blind], lengths

    return Trainable(encoder, [encoder], (), DIM, layers, lambda on: None, 3)


@pytest.mark.parametrize("method", ["head", "top-k"])
def test_with_last_the_head_reads_the_last_layer_as_before(method):
    """``--ft-layers last`` keeps the one-layer head: fold 0's curve and score are those of the head before every
    layer could be read (recorded from that code on this toy)."""
    ((_, result),) = fit_folds(method, shuffle=False, epochs=4, layers="last", folds=1)
    losses = [c["value"] for c in result.curve if c["split"] == "fit"]
    recorded = {"head": [1.2298495603932276, 1.076759719186359, 0.8992239435513815, 0.7642704745133718]}
    recorded["top-k"] = [1.225835962427987, 1.063577996359931, 0.8731619086530473, 0.72680754131741]
    assert losses == pytest.approx(recorded[method], abs=1e-6)
    assert result.scores["macro_f1"] == pytest.approx(0.9153439153439153) and result.layer_weights == [1.0]


def test_the_all_layers_head_finds_the_one_layer_that_carries_the_label():
    """Only the middle layer carries the class: the head over every layer learns it and weighs that layer most;
    the last-layer head stays near chance (1/3)."""
    every = fit_folds("head", shuffle=False, epochs=12, layers="all", trainable=middle_trainable())
    last = fit_folds("head", shuffle=False, epochs=12, layers="last", trainable=middle_trainable())
    assert np.mean([r.scores["macro_f1"] for _, r in every]) > 0.8  # 0.88 here
    assert np.mean([r.scores["macro_f1"] for _, r in last]) < 0.45  # 0.33 here
    for _, r in every:
        assert len(r.layer_weights) == 3 and sum(r.layer_weights) == pytest.approx(1.0)
        assert int(np.argmax(r.layer_weights)) == 1


def test_the_layer_weights_learn_at_their_own_rate():
    """``layer_lr`` drives the layer weights alone: a larger one moves the weighting further from uniform."""
    audio, codes, groups = toy_task()
    train, test = make_cv(codes.astype(str), groups, 5, 0).folds[0]
    fit, val = validation_split(train, codes, groups, 0.2, 0)
    spread = []
    for layer_lr in (1e-3, 1e-1):
        trainable = middle_trainable()
        model = classifier(trainable, 3, prepare(trainable, "head", FinetuneSettings()), seed=0)
        inputs = Inputs(model, audio, batch_seconds=40, rate=RATE)
        kw = dict(epochs=3, patience=3, lrs=(1e-2, 1e-3), seed=0, device=torch.device("cpu"), dtype=None)
        result = train_fold(inputs, FoldData(0, fit, val, test, codes, codes), 3, layer_lr=layer_lr, **kw)
        spread.append(max(result.layer_weights) - 1 / 3)
    assert 0 < spread[0] < 0.005 and spread[1] > 0.03  # 0.0003 and 0.06 here
