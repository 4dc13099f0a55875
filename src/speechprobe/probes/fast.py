"""Batched probe kernels in torch: every layer of one fold at once, on the GPU when there is one.

Both kernels run scikit-learn's own algorithm, batched over layers; they are not approximations of it.
The scikit-learn estimators in :mod:`.estimators` stay the reference (they pass ``check_estimator``);
``probe_layers(..., backend="sklearn")`` runs them alone.

``knn_predict``
    ``KNeighborsClassifier(n_neighbors=k, weights="uniform", metric="euclidean")`` on standardised
    features: squared distances in float64 as ``|a|^2 - 2 a.b + |b|^2`` (scikit-learn's brute-force
    formula, as a batched matrix product), the k nearest training items, then a majority vote; a tie
    between classes goes to the smallest class index, as in scikit-learn.
    Tolerance: predictions are identical unless two training items lie at the same distance (to ~1e-12
    relative) across the k-th neighbour. At an exact tie this kernel keeps the lower training index;
    scikit-learn's neighbour heap usually does the same but does not promise it, and for features of
    at most 15 dimensions scikit-learn uses a k-d tree whose distances round differently.

``mlp_predict``
    ``MLPClassifier(hidden_layer_sizes=(H,), activation="relu", solver="adam", batch_size="auto",
    early_stopping=...)``, step for step: Glorot-uniform weights drawn from
    ``RandomState(random_state)`` in scikit-learn's order, the same per-epoch shuffle and
    mini-batches, softmax (or logistic for two classes) log-loss with the same L2 term, the same Adam
    update (computed in float64 and rounded into the parameters, as NumPy does) and the same stopping
    rule: without early stopping, training loss not better by ``tol`` for more than ``n_iter_no_change``
    epochs (checked in the parameters' dtype); with it, scikit-learn's validation split drawn from the same
    ``RandomState``, validation accuracy not better by ``tol`` for as long, and each layer's best-epoch
    weights. Only the order of floating-point sums inside the matrix products differs.
    Tolerance: in float64, class probabilities agree with ``predict_proba`` to ~1e-15 and predictions and
    ``n_iter_`` are identical. In float32 (the feature store's dtype) probabilities agree to ~1e-5 on the
    benchmark task (up to ~3e-3 in a 200-epoch, high-learning-rate stress test), and predictions and
    ``n_iter_`` were identical on every item of the equality tests and the benchmark;
    rounding can still, in principle, move a test item lying on a decision boundary (a probability tie
    to ~1e-6) or flip a stopping decision whose loss change is within ~1e-7 of ``tol``. Documented bound
    for the rows of ``probe_layers``: macro-F1 and accuracy per (layer, fold) within 0.02 of the
    scikit-learn path, equal in every case measured. TF32 is switched off for the products on CUDA.

Both kernels return the same values on the same device whatever the batch composition's timing: they
use no torch random numbers, and ``runner.probe_layers`` splits the work the same way for every
``n_jobs``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils import gen_batches

from ..config import ProbeSettings
from ..errors import ConfigError
from .estimators import ScaledProbe, stops_early
from .registry import make_probe, probe_spec

# Upper bound on (layers x test rows x training rows) distance entries held at once by ``knn_predict``.
KNN_BLOCK_ELEMENTS = 1 << 24
# Upper bound on the bytes of one fold's features copied out of the (memory-mapped) stack at once by
# ``fold_predictions``: a few layers at a time, never every layer of the fold (13 x 768 x 10,000 float32
# clips are 400 MB; 33 x 1280 x 10,000 are 1.7 GB).
FOLD_CHUNK_BYTES = 1 << 27


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; ``None`` means CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown probe device {device!r}; use cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"probe device {device!r} asked for, but torch sees no CUDA GPU; use cpu")
    return dev


@contextlib.contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """IEEE float32 matrix products (no TF32) on CUDA for the duration; nothing to do on the CPU."""
    if device.type != "cuda":
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def standardise_layers(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, ``StandardScaler`` fitted on ``train`` ``(L, n, D)`` and applied to both sides.

    The very transform the scikit-learn probes apply inside their pipelines, so inputs match bit for bit.
    """
    out_train, out_test = [], []
    for layer in range(train.shape[0]):
        scaler = StandardScaler().fit(train[layer])
        out_train.append(scaler.transform(train[layer]))
        out_test.append(scaler.transform(test[layer]))
    return np.stack(out_train), np.stack(out_test)


def knn_predict(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    n_classes: int,
    n_neighbors: int = 5,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Uniform-weight euclidean k-NN class codes ``(L, m)`` for standardised ``train`` ``(L, n, D)``,
    ``test`` ``(L, m, D)`` and training codes ``y_train`` ``(n,)`` in ``0..n_classes-1``."""
    device = torch.device(device)
    n_layers, n_train, _ = train.shape
    if n_neighbors > n_train:
        raise ConfigError(f"KNN needs n_neighbors={n_neighbors} <= {n_train} training items per fold")
    Xtr = torch.as_tensor(np.asarray(train, dtype=np.float64), device=device)
    Xte = torch.as_tensor(np.asarray(test, dtype=np.float64), device=device)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(y_train, device=device), n_classes).to(torch.float64)
    train_norms = Xtr.square().sum(-1)[:, None, :]  # (L, 1, n)
    step = max(1, KNN_BLOCK_ELEMENTS // max(1, n_layers * n_train))
    preds = []
    for start in range(0, Xte.shape[1], step):
        block = Xte[:, start : start + step]
        dist = torch.baddbmm(train_norms, block, Xtr.transpose(1, 2), alpha=-2.0)
        dist += block.square().sum(-1, keepdim=True)
        # The k nearest; at the k-th distance, equal distances go to the lowest training index.
        kth = dist.kthvalue(n_neighbors, dim=-1, keepdim=True).values
        closer = dist < kth
        tied = dist == kth
        room = n_neighbors - closer.sum(-1, keepdim=True)
        chosen = closer | (tied & (tied.cumsum(-1) <= room))
        votes = torch.matmul(chosen.to(torch.float64), onehot)  # (L, block, C), small exact integers
        preds.append(votes.argmax(-1))  # first maximum: ties go to the smallest class index
    return torch.cat(preds, dim=1).cpu().numpy()


def _glorot(rs: np.random.RandomState, fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)


def _forward(X: torch.Tensor, W1, b1, W2, b2, binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden ReLU activations and output probabilities, as ``MLPClassifier._forward_pass``."""
    hidden = torch.bmm(X, W1).add_(b1[:, None, :]).clamp_(min=0)
    out = torch.bmm(hidden, W2).add_(b2[:, None, :])
    if binary:
        return hidden, torch.sigmoid(out)
    out = out - out.amax(-1, keepdim=True)
    out.exp_()
    return hidden, out.div_(out.sum(-1, keepdim=True))


def _classes_of(prob: torch.Tensor, binary: bool) -> torch.Tensor:
    """Predicted class codes from probabilities, as ``MLPClassifier.predict`` (first maximum; > 0.5 for two)."""
    return (prob[..., 0] > 0.5).long() if binary else prob.argmax(-1)


def validation_split(
    y_train: np.ndarray, validation_fraction: float, rs: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept for training and rows held out for validation: scikit-learn's own split, drawn from ``rs`` on
    the label-binarised targets exactly as ``MLPClassifier(early_stopping=True)`` draws it (stratified only
    when the targets are one column, i.e. for two classes)."""
    targets = LabelBinarizer().fit_transform(y_train).astype(bool)
    stratify = targets if targets.shape[1] == 1 else None
    fit_rows, val_rows = train_test_split(
        np.arange(len(y_train)), random_state=rs, test_size=validation_fraction, stratify=stratify
    )
    return fit_rows, val_rows


class _Stopping:
    """Per-layer stopping bookkeeping of ``MLPClassifier``: the training-loss rule, or with a validation set the
    validation-accuracy rule that also keeps each layer's best weights (restored at the end)."""

    def __init__(self, n_layers: int, params: list[torch.Tensor], tol: float, patience: int, np_dtype, validating):
        self.validating = validating
        self.tol, self.patience, self.np_dtype = tol, patience, np_dtype
        self.best = np.full(n_layers, -np.inf if validating else np.inf, dtype=np.float64 if validating else np_dtype)
        self.stale = np.zeros(n_layers, dtype=int)
        self.final = [p.clone() for p in params]  # per layer: the weights to predict with

    def update(self, alive: np.ndarray, value: np.ndarray, params: list[torch.Tensor]) -> np.ndarray:
        """Record an epoch's value per alive layer (validation accuracy, or training loss); True where a layer stops."""
        if self.validating:
            worse = value < self.best[alive] + self.tol
            improved = np.flatnonzero(value > self.best[alive])
            self.best[alive[improved]] = value[improved]
            self._keep(alive[improved], improved, params)
        else:
            worse = value > self.best[alive] - self.np_dtype(self.tol)
            self.best[alive] = np.minimum(self.best[alive], value)
        self.stale[alive] = np.where(worse, self.stale[alive] + 1, 0)
        return self.stale[alive] > self.patience

    def finish(self, layers: np.ndarray, rows: np.ndarray, params: list[torch.Tensor]) -> None:
        """Layers ``layers`` (at ``rows`` of the live parameters) stop; without validation their last weights count."""
        if not self.validating:
            self._keep(layers, rows, params)

    def _keep(self, layers: np.ndarray, rows: np.ndarray, params: list[torch.Tensor]) -> None:
        if len(layers):
            index = torch.as_tensor(rows, device=params[0].device)
            target = torch.as_tensor(layers, device=params[0].device)
            for f, p in zip(self.final, params):
                f[target] = p[index]


def _adam_epoch(state: dict, X: torch.Tensor, Y: torch.Tensor, batches, order, binary: bool, with_loss: bool):
    """One epoch of mini-batch Adam on every alive layer (``MLPClassifier._fit_stochastic``'s inner loop);
    returns the per-batch ``(loss (L,), batch size)`` when ``with_loss``."""
    params, moments, squares = state["params"], state["moments"], state["squares"]
    alpha, lr0, beta_1, beta_2, epsilon = state["alpha"], state["lr"], state["beta_1"], state["beta_2"], state["eps"]
    losses = []
    for batch in batches:
        rows = torch.as_tensor(order[batch], device=X.device)
        Xb, Yb, nb = X[:, rows], Y[rows], batch.stop - batch.start
        W1, b1, W2, b2 = params
        hidden, prob = _forward(Xb, W1, b1, W2, b2, binary)
        if with_loss:  # for the training-loss stopping rule only: clipped log-loss + L2 / n, as scikit-learn
            pc = prob.clamp(state["clip"], 1 - state["clip"])
            log_terms = torch.xlogy(Yb, pc) + (torch.xlogy(1 - Yb, 1 - pc) if binary else 0)
            l2 = W1.square().sum((1, 2)) + W2.square().sum((1, 2))
            losses.append((-log_terms.mean(1).sum(-1) + (0.5 * alpha) * l2 / nb, nb))
        # Back-propagation: gradients of the mean loss + alpha/2n |W|^2.
        delta_out = prob - Yb
        delta_hidden = torch.bmm(delta_out, W2.transpose(1, 2)).mul_(hidden > 0)
        grads = [
            torch.bmm(Xb.transpose(1, 2), delta_hidden).add_(W1 * alpha).div_(nb),
            delta_hidden.sum(1).div_(nb),
            torch.bmm(hidden.transpose(1, 2), delta_out).add_(W2 * alpha).div_(nb),
            delta_out.sum(1).div_(nb),
        ]
        # Adam, with scikit-learn's operation order and its float64 step.
        state["step"] += 1
        lr = lr0 * np.sqrt(1 - beta_2 ** state["step"]) / (1 - beta_1 ** state["step"])
        for p, g, m, v in zip(params, grads, moments, squares):
            m.mul_(beta_1).add_(g * (1 - beta_1))
            v.mul_(beta_2).add_(g.square().mul_(1 - beta_2))
            update = (m.to(torch.float64) * -lr).div_(v.sqrt().add_(epsilon))
            if p.dtype == torch.float64:
                p.add_(update)
            else:  # NumPy adds the float64 step to the float32 parameter, then rounds once
                p.copy_(p.to(torch.float64).add_(update))
    return losses


def _epoch_loss(losses, n_samples: int, n_alive: int, np_dtype) -> np.ndarray:
    """The epoch's training loss per layer, accumulated in the parameters' dtype like scikit-learn's bookkeeping."""
    total = np.zeros(n_alive, dtype=np_dtype)
    for loss, nb in losses:
        total = (total + loss.cpu().numpy().astype(np_dtype) * np_dtype(nb)).astype(np_dtype)
    return (total / np_dtype(n_samples)).astype(np_dtype)


def mlp_predict(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    n_classes: int,
    *,
    hidden_units: int = 256,
    alpha: float = 1e-4,
    learning_rate_init: float = 1e-3,
    max_iter: int = 200,
    random_state: int = 0,
    tol: float = 1e-4,
    n_iter_no_change: int = 10,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    early_stopping_min_train: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``MLPClassifier`` per layer, trained together.

    Returns class codes ``(L, m)``, class probabilities ``(L, m, n_classes)`` (as ``predict_proba``) and
    ``n_iter_`` ``(L,)``.

    ``train`` ``(L, n, D)`` and ``test`` ``(L, m, D)`` are standardised; their dtype (float32 or float64) is
    the dtype of the computation, as in scikit-learn. ``y_train`` holds codes ``0..n_classes-1``.
    ``early_stopping`` as ``MLPProbe``: the same validation split, or none where :func:`.estimators.stops_early` says.
    """
    # Over 60 lines because it is one batched kernel of MLPClassifier.fit: init, split, epochs with the stopping
    # rule, predict, sharing one optimiser state; it takes sklearn's 13 hyper-parameters one per line.
    device = torch.device(device)
    np_dtype = np.float32 if train.dtype == np.float32 else np.float64
    dtype = torch.float32 if np_dtype == np.float32 else torch.float64
    n_layers, _, n_features = train.shape
    binary = n_classes == 2
    rs = np.random.RandomState(random_state)
    params = []
    for fan_in, fan_out in ((n_features, hidden_units), (hidden_units, 1 if binary else n_classes)):
        for value in _glorot(rs, fan_in, fan_out):
            value = torch.as_tensor(value.astype(np_dtype), device=device)
            params.append(value.expand(n_layers, *value.shape).clone())
    X = torch.as_tensor(np.asarray(train, dtype=np_dtype), device=device)
    codes = np.asarray(y_train)
    validating = stops_early(codes, early_stopping, validation_fraction, early_stopping_min_train)
    if validating:
        fit_rows, val_rows = validation_split(codes, validation_fraction, rs)
        X_val, y_val = X[:, torch.as_tensor(val_rows, device=device)], torch.as_tensor(codes[val_rows], device=device)
        X, codes = X[:, torch.as_tensor(fit_rows, device=device)], codes[fit_rows]
    labels = torch.as_tensor(codes, device=device)
    Y = (labels == 1)[:, None].to(dtype) if binary else torch.nn.functional.one_hot(labels, n_classes).to(dtype)
    n_samples = len(codes)
    state = {"params": params, "moments": [torch.zeros_like(p) for p in params], "step": 0}
    state |= {"squares": [torch.zeros_like(p) for p in params], "clip": torch.finfo(dtype).eps, "alpha": alpha}
    state |= {"lr": learning_rate_init, "beta_1": beta_1, "beta_2": beta_2, "eps": epsilon}
    stopping = _Stopping(n_layers, params, tol, n_iter_no_change, np_dtype, validating)
    alive = np.arange(n_layers)  # layers still training, in batch order
    n_iter = np.zeros(n_layers, dtype=int)
    order = np.arange(n_samples)
    batches = list(gen_batches(n_samples, min(200, n_samples)))
    with exact_float32(device):
        for epoch in range(max_iter):
            # sklearn.utils.shuffle(order, random_state=rs), without its per-call validation
            permutation = np.arange(n_samples)
            rs.shuffle(permutation)
            order = order[permutation]
            losses = _adam_epoch(state, X, Y, batches, order, binary, with_loss=not validating)
            n_iter[alive] += 1
            if validating:
                right = (_classes_of(_forward(X_val, *state["params"], binary)[1], binary) == y_val).sum(-1)
                value = right.cpu().numpy() / len(y_val)  # accuracy_score: the count over n, in float64
            else:
                value = _epoch_loss(losses, n_samples, len(alive), np_dtype)
            done = stopping.update(alive, value, state["params"])
            if epoch == max_iter - 1:
                done[:] = True
            if done.any():
                stopping.finish(alive[done], np.flatnonzero(done), state["params"])
                keep = np.flatnonzero(~done)
                if not len(keep):
                    break
                index = torch.as_tensor(keep, device=device)
                alive = alive[keep]
                X = X[index]
                if validating:
                    X_val = X_val[index]
                for key in ("params", "moments", "squares"):
                    state[key] = [t[index] for t in state[key]]
        Xte = torch.as_tensor(np.asarray(test, dtype=np_dtype), device=device)
        _, prob = _forward(Xte, *stopping.final, binary)
    pred = _classes_of(prob, binary)
    if binary:
        prob = torch.cat([1 - prob, prob], dim=-1)
    return pred.cpu().numpy(), prob.cpu().numpy(), n_iter


def layer_chunks(features: np.ndarray, n_rows: int, budget: int | None = None) -> list[slice]:
    """Consecutive layer ranges of ``features`` ``(N, L, D)`` whose ``n_rows`` rows fit in ``budget`` bytes
    (default :data:`FOLD_CHUNK_BYTES`; at least one layer per range)."""
    n_layers, per_layer = features.shape[1], n_rows * features.shape[2] * features.dtype.itemsize
    step = max(1, (FOLD_CHUNK_BYTES if budget is None else budget) // max(1, per_layer))
    return [slice(start, min(start + step, n_layers)) for start in range(0, n_layers, step)]


def fold_predictions(
    features: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    y_train: np.ndarray,
    kernels: dict[str, dict],
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray]:
    """Predicted labels ``(L, m)`` (values of ``y_train``) of each probe of ``kernels`` (probe name -> its
    :func:`kernel_arguments`) as its torch kernel on every layer of one fold of ``features`` ``(N, L, D)`` (may
    be a memmap). A training part of one class predicts it everywhere, as the estimators do.

    Layers are independent (each MLP layer starts from its own ``RandomState(random_state)`` draw), so the
    fold is read and trained a few layers at a time (:func:`layer_chunks`) with the same results as all at
    once, and memory stays bounded whatever the number of layers.
    """
    present, codes = np.unique(y_train, return_inverse=True)
    if len(present) == 1:
        return {name: np.full((features.shape[1], len(test)), present[0]) for name in kernels}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in kernels}
    for layers in layer_chunks(features, len(train) + len(test)):
        X_train = np.asarray(features[train, layers]).transpose(1, 0, 2)
        X_test = np.asarray(features[test, layers]).transpose(1, 0, 2)
        X_train, X_test = standardise_layers(X_train, X_test)
        for name, arguments in kernels.items():
            parts[name].append(kernel_predict(name, X_train, codes, X_test, len(present), arguments, device))
    return {name: present[np.concatenate(chunks)] for name, chunks in parts.items()}


def _knn_arguments(probe: ScaledProbe) -> dict | None:
    params = probe._classifier().get_params()
    euclidean = params["metric"] == "euclidean" or (params["metric"] == "minkowski" and params["p"] == 2)
    return {"n_neighbors": params["n_neighbors"]} if params["weights"] == "uniform" and euclidean else None


def _mlp_arguments(probe: ScaledProbe) -> dict | None:
    params = probe._classifier().get_params()
    supported = (
        params["solver"] == "adam"
        and params["activation"] == "relu"
        and params["batch_size"] == "auto"
        and params["shuffle"]
        and len(params["hidden_layer_sizes"]) == 1
        and isinstance(params["random_state"], (int, np.integer))
    )
    if not supported:
        return None
    keys = ("alpha", "learning_rate_init", "max_iter", "random_state", "tol", "n_iter_no_change")
    keys += ("beta_1", "beta_2", "epsilon", "early_stopping", "validation_fraction")
    out = {"hidden_units": params["hidden_layer_sizes"][0], **{k: params[k] for k in keys}}
    return out | {"early_stopping_min_train": probe.early_stopping_min_train}


# Kernels by the name a ProbeSpec gives: ``(arguments, predict)``. ``arguments(probe)`` reads the kernel's keyword
# arguments from a configured estimator (None: the kernel does not reproduce those settings; scikit-learn runs);
# ``predict(train (L, n, D), y_train, test (L, m, D), n_classes, device=..., **arguments)``: class codes (L, m).
KERNELS: dict[str, tuple[Callable[[ScaledProbe], dict | None], Callable[..., np.ndarray]]] = {
    "knn": (_knn_arguments, knn_predict),
    "mlp": (_mlp_arguments, lambda *args, **kwargs: mlp_predict(*args, **kwargs)[0]),
}


def kernel_arguments(name: str, seed: int, settings: ProbeSettings | None = None) -> dict | None:
    """Keyword arguments of the torch kernel that reproduces probe ``name``, or None when there is none."""
    kernel = probe_spec(name).kernel
    return None if kernel is None else KERNELS[kernel][0](make_probe(name, seed, settings))


def kernel_predict(
    name: str, train: np.ndarray, y_train: np.ndarray, test: np.ndarray, n_classes: int, arguments: dict, device
) -> np.ndarray:
    """Class codes ``(L, m)`` of probe ``name``'s kernel with its ``arguments`` on standardised layers."""
    return KERNELS[probe_spec(name).kernel][1](train, y_train, test, n_classes, device=device, **arguments)
