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
    early_stopping=False)``, step for step: Glorot-uniform weights drawn from
    ``RandomState(random_state)`` in scikit-learn's order, the same per-epoch shuffle and
    mini-batches, softmax (or logistic for two classes) log-loss with the same L2 term, the same Adam
    update (computed in float64 and rounded into the parameters, as NumPy does) and the same stopping
    rule (training loss not better by ``tol`` for more than ``n_iter_no_change`` epochs, checked in the
    parameters' dtype). Only the order of floating-point sums inside the matrix products differs.
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
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.utils import gen_batches

from ..errors import ConfigError

# Upper bound on (layers x test rows x training rows) distance entries held at once by ``knn_predict``.
KNN_BLOCK_ELEMENTS = 1 << 24


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
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``MLPClassifier`` per layer, trained together.

    Returns class codes ``(L, m)``, class probabilities ``(L, m, n_classes)`` (as ``predict_proba``) and
    ``n_iter_`` ``(L,)``.

    ``train`` ``(L, n, D)`` and ``test`` ``(L, m, D)`` are standardised; their dtype (float32 or float64) is
    the dtype of the computation, as in scikit-learn. ``y_train`` holds codes ``0..n_classes-1``.
    """
    device = torch.device(device)
    np_dtype = np.float32 if train.dtype == np.float32 else np.float64
    dtype = torch.float32 if np_dtype == np.float32 else torch.float64
    n_layers, n_samples, n_features = train.shape
    binary = n_classes == 2
    n_out = 1 if binary else n_classes

    rs = np.random.RandomState(random_state)
    params = []
    for fan_in, fan_out in ((n_features, hidden_units), (hidden_units, n_out)):
        coef, intercept = _glorot(rs, fan_in, fan_out)
        for value in (coef, intercept):
            value = torch.as_tensor(value.astype(np_dtype), device=device)
            params.append(value.expand(n_layers, *value.shape).clone())
    moments = [torch.zeros_like(p) for p in params]
    squares = [torch.zeros_like(p) for p in params]

    X = torch.as_tensor(np.asarray(train, dtype=np_dtype), device=device)
    codes = torch.as_tensor(y_train, device=device)
    Y = (codes == 1)[:, None].to(dtype) if binary else torch.nn.functional.one_hot(codes, n_classes).to(dtype)
    clip = torch.finfo(dtype).eps
    batch_size = min(200, n_samples)

    alive = np.arange(n_layers)  # layers still training, in batch order
    final: list[torch.Tensor] = [p.clone() for p in params]
    best = np.full(n_layers, np.inf, dtype=np_dtype)
    stale = np.zeros(n_layers, dtype=int)
    n_iter = np.zeros(n_layers, dtype=int)
    step = 0
    order = np.arange(n_samples)
    batches = list(gen_batches(n_samples, batch_size))
    with exact_float32(device):
        for epoch in range(max_iter):
            # sklearn.utils.shuffle(order, random_state=rs), without its per-call validation
            permutation = np.arange(n_samples)
            rs.shuffle(permutation)
            order = order[permutation]
            batch_losses = []
            for batch in batches:
                rows = torch.as_tensor(order[batch], device=device)
                Xb, Yb, nb = X[:, rows], Y[rows], batch.stop - batch.start
                W1, b1, W2, b2 = params
                hidden, prob = _forward(Xb, W1, b1, W2, b2, binary)
                # Loss (for the stopping rule only): clipped log-loss + L2 / n, as scikit-learn.
                pc = prob.clamp(clip, 1 - clip)
                log_terms = torch.xlogy(Yb, pc) + (torch.xlogy(1 - Yb, 1 - pc) if binary else 0)
                l2 = W1.square().sum((1, 2)) + W2.square().sum((1, 2))
                batch_losses.append((-log_terms.mean(1).sum(-1) + (0.5 * alpha) * l2 / nb, nb))
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
                step += 1
                lr = learning_rate_init * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
                for p, g, m, v in zip(params, grads, moments, squares):
                    m.mul_(beta_1).add_(g * (1 - beta_1))
                    v.mul_(beta_2).add_(g.square().mul_(1 - beta_2))
                    update = (m.to(torch.float64) * -lr).div_(v.sqrt().add_(epsilon))
                    if dtype == torch.float64:
                        p.add_(update)
                    else:  # NumPy adds the float64 step to the float32 parameter, then rounds once
                        p.copy_(p.to(torch.float64).add_(update))
            # Stopping rule per layer, in the parameters' dtype like scikit-learn's bookkeeping.
            total = np.zeros(len(alive), dtype=np_dtype)
            for loss, nb in batch_losses:
                total = (total + loss.cpu().numpy().astype(np_dtype) * np_dtype(nb)).astype(np_dtype)
            epoch_loss = (total / np_dtype(n_samples)).astype(np_dtype)
            n_iter[alive] += 1
            worse = epoch_loss > best[alive] - np_dtype(tol)
            stale[alive] = np.where(worse, stale[alive] + 1, 0)
            best[alive] = np.minimum(best[alive], epoch_loss)
            done = stale[alive] > n_iter_no_change
            if epoch == max_iter - 1:
                done[:] = True
            if done.any():
                for j in np.flatnonzero(done):
                    for f, p in zip(final, params):
                        f[alive[j]] = p[j]
                keep = np.flatnonzero(~done)
                if not len(keep):
                    break
                index = torch.as_tensor(keep, device=device)
                alive = alive[keep]
                X = X[index]
                params = [p[index] for p in params]
                moments = [m[index] for m in moments]
                squares = [v[index] for v in squares]
        Xte = torch.as_tensor(np.asarray(test, dtype=np_dtype), device=device)
        _, prob = _forward(Xte, *final, binary)
    pred = (prob[..., 0] > 0.5).long() if binary else prob.argmax(-1)
    if binary:
        prob = torch.cat([1 - prob, prob], dim=-1)
    return pred.cpu().numpy(), prob.cpu().numpy(), n_iter
