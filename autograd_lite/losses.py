"""Losses, composed from Tensor operations (no backward of their own), plus the fused one.

Convention for every loss here, eq 76: J = (1/m) * sum over the m samples (columns) of L, where
L is summed over the output units. For the seed's single output unit this is the mean.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from . import backend, ops
from .errors import SaturationWarning, ShapeError
from .core.modes import name_scope
from .ops.losses import PICK_CLASSES, Softmax, xlogy
from .core.tensor import Tensor, as_tensor


# Pictures and the check report find a loss that was computed from the logits by this scope
# on its tensors (``J.scope``), so they can say so (see docs/nn.md, "Losses").
FUSED_SIGMOID_SCOPE = "binary_cross_entropy from the sigmoid's logits (fused, eq 78)"
FUSED_SOFTMAX_SCOPE = "cross_entropy from the softmax's logits (log_softmax)"


def binary_cross_entropy(A, Y, *, fuse=True):
    """Log-loss of probabilities A against labels Y: eq 1, averaged over the m columns (eq 76).

    - If A was recorded as a sigmoid (``A = Z.sigmoid()``, so ``A.op == "sigmoid"``), the loss
      is computed from its input, the logits Z, by ``binary_cross_entropy_with_logits(Z, Y)``
      (as TF-Keras does for a sigmoid output): J is finite for any Z and dJ/dZ = (A - Y) / m
      exactly (eq 78 with eq 76's 1/m), even where A rounded to exactly 0 or 1. J's tensors
      then carry the name scope ``FUSED_SIGMOID_SCOPE`` (pictures show it), and A takes no
      part in J (``A.grad`` stays None). ``fuse=False`` keeps J a function of A, so dA[N]
      (eq 77) exists in the graph, as the check report and the seed's pictures need.
    - Otherwise J = -(1/m) sum [xlogy(Y, A) + xlogy(1 - Y, 1 - A)]: the limit 0 log 0 = 0 in
      value and gradient (``ops_losses.xlogy``), so a confidently right sample (A = Y = 1)
      costs 0 and moves nothing, and a confidently wrong one (A = 1, Y = 0) costs +inf, with a
      ``SaturationWarning`` naming it. A is never clamped (a clamp changes the gradient).
    """
    A = as_tensor(A)
    Y = as_tensor(Y, A)
    _check_same_shape("binary_cross_entropy", "probabilities A", A, "labels Y", Y)
    if A.ndim == 0:
        raise ShapeError("binary_cross_entropy: A is a scalar; pass an (n, m) or (m,) array "
                         "(samples along the last axis)")
    if fuse and A.op == "sigmoid" and len(A.parents) == 1:
        with name_scope(FUSED_SIGMOID_SCOPE):
            return binary_cross_entropy_with_logits(A.parents[0], Y)
    m = A.shape[-1]
    probabilities, labels = A.data, Y.data
    wrong = (((probabilities == 0) & (labels != 0)) | ((probabilities == 1) & (labels != 1)))

    def saturated(count, first):
        at = "" if first is None or backend.of(probabilities).is_dask else \
            f": A = {float(probabilities[first]):g}, Y = {float(labels[first]):g}"
        return (f"binary_cross_entropy: {count} of {A.size} probabilities in {A.name or 'A'} "
                f"are exactly 0 or 1 on the wrong side of their label (first at index "
                f"{first}{at}): log-loss is +inf there. Compute A as a sigmoid of logits Z "
                f"(then the loss uses Z), or use binary_cross_entropy_with_logits(Z, Y), which "
                f"is exact for any Z.")

    return _with_probabilities_checked(
        lambda: -(xlogy(Y, A) + xlogy(1 - Y, 1 - A)).sum() / m, "binary_cross_entropy", A,
        "binary_cross_entropy_with_logits(Z, Y)", wrong, saturated)


def _with_probabilities_checked(loss, op_name, A, logits_way, wrong, saturated):
    """``loss()``, once A's values are checked: in [0, 1] (else a ValueError: they look like
    logits), and a ``SaturationWarning`` (``saturated(count, first index)``) where ``wrong``
    (a 0 or 1 that makes the loss +inf) holds. The check reads five small summaries of A and
    ``wrong``: on an eager backend at once, before the loss is built; on Dask inside the
    compute that computes the loss (``backend.check_when_computed``), so calling the loss
    computes nothing."""
    probabilities = A.data
    if A.size == 0:
        return loss()
    where = backend.of(probabilities)
    xp = where.xp
    missing = xp.isnan(probabilities)
    hits = xp.astype(wrong, xp.int8)
    summaries = (
        xp.min(xp.where(missing, backend.constant(np.inf, where, probabilities.dtype), probabilities)),
        xp.max(xp.where(missing, backend.constant(-np.inf, where, probabilities.dtype), probabilities)),
        xp.sum(xp.astype(wrong, xp.int64)), xp.any(wrong, axis=-1), xp.argmax(hits, axis=-1))

    def check(low, high, count, rows_hit, first_in_row):
        if low < 0 or high > 1:
            raise ValueError(f"{op_name}: probabilities A must lie in [0, 1], got values from "
                             f"{float(low):.6g} to {float(high):.6g}; if these are logits Z, "
                             f"use {logits_way}")
        if count:
            row = tuple(int(i) for i in np.argwhere(rows_hit)[0])
            first = row + (int(first_in_row[row]),)
            warnings.warn(saturated(int(count), first), SaturationWarning,
                          stacklevel=_outside_the_package())

    if not where.is_dask:
        check(*[backend.to_numpy(value) for value in summaries])
        return loss()
    J = loss()
    backend.check_when_computed(J.data, check, *summaries)
    return J


def _outside_the_package() -> int:
    """The stacklevel of the first caller outside autograd_lite (a warning then points at the
    user's line: the loss's call, or the ``backward()`` that computed a Dask loss)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == __package__:
        frame, level = frame.f_back, level + 1
    return level


def binary_cross_entropy_with_logits(Z, Y):
    """Log-loss of sigmoid(Z) against Y in one stable primitive: eqs 1, 7 and 76 fused.

    Its gradient is exactly dJ/dZ = (sigmoid(Z) - Y) / m: eq 78's dZ[N] = A[N] - Y with eq 76's
    1/m, for any Z (no log of a rounded 0 or 1).
    """
    Z = as_tensor(Z)
    return ops.BCE_WITH_LOGITS(Z, as_tensor(Y, Z))


def _check_same_shape(op_name, name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ShapeError(f"{op_name}: {name_a} has shape {a.shape} but {name_b} has shape "
                         f"{b.shape}; they must be equal")


def softmax_cross_entropy(Z, Y):
    """Cross-entropy of softmax(Z) against the classes Y, from the logits Z (n[N] x m).

    Per sample ``L = -sum_k y_k log softmax(z)_k`` (the multi-class form of eq 1, summed over
    the output units), and ``J = (1/m) sum_i L(i)`` (eq 76). ``Y`` is either one column per
    sample (n[N] x m: one-hot, or any probability vectors) or the class indices, integers of
    shape (m,) as an ndarray, a list or a Tensor (PyTorch's ``cross_entropy`` takes both kinds
    too). Composed from ``log_softmax`` (stable for any Z) and, for indices, differentiable
    integer indexing, so dJ/dZ = (softmax(Z) - Y) / m comes from the engine: the softmax
    counterpart of eq 78's dZ[N] = A[N] - Y, with eq 76's 1/m.
    """
    Z = as_tensor(Z)
    if Z.ndim != 2:
        raise ShapeError(f"softmax_cross_entropy: logits Z must be n[N] x m (classes x samples), "
                         f"got shape {Z.shape}")
    n, m = Z.shape
    log_probabilities = Z.log_softmax(axis=0)
    if np.ndim(Y.data if isinstance(Y, Tensor) else Y) == 2:
        Y = as_tensor(Y, Z)
        _check_same_shape("softmax_cross_entropy", "logits Z", Z, "one-hot labels Y", Y)
        return -(Y * log_probabilities).sum() / m
    classes = class_indices("softmax_cross_entropy", Y, n, m)
    return -PICK_CLASSES(log_probabilities, _classes_tensor(Y, classes)).sum() / m


def cross_entropy(A, Y, *, fuse=True):
    """Cross-entropy of probabilities A (a softmax output, n[N] x m) against the classes Y.

    ``L = -sum_k y_k log a_k`` per sample, ``J = (1/m) sum_i L(i)`` (eqs 1 and 76, the
    reference derivation's "cross-entropy"). ``Y`` is one-hot columns (n[N] x m) or class
    indices of shape (m,) (ndarray, list or Tensor).

    - If A was recorded as a softmax over the classes (``A = Z.softmax(axis=0)``), the loss is
      ``softmax_cross_entropy(Z, Y)``, from log_softmax of the logits: finite for any Z, and
      dJ/dZ = (A - Y) / m exactly. J's tensors carry the name scope ``FUSED_SOFTMAX_SCOPE``;
      ``fuse=False`` keeps J a function of A (dA[N], eq 77, in the graph).
    - Otherwise ``-xlogy(Y, A)``: a class with y = 0 costs 0 even where a = 0; a true class
      with a = 0 costs +inf, with a ``SaturationWarning``. Never a clamp.
    """
    A = as_tensor(A)
    if A.ndim != 2:
        raise ShapeError(f"cross_entropy: probabilities A must be n[N] x m, got shape {A.shape}")
    n, m = A.shape
    if np.ndim(Y.data if isinstance(Y, Tensor) else Y) == 2:
        Y = as_tensor(Y, A)
        _check_same_shape("cross_entropy", "probabilities A", A, "one-hot labels Y", Y)
        if fuse and _softmax_over_classes(A):
            with name_scope(FUSED_SOFTMAX_SCOPE):
                return softmax_cross_entropy(A.parents[0], Y)
        wrong = (A.data == 0) & (Y.data != 0)
        loss = lambda: -xlogy(Y, A).sum() / m  # noqa: E731
    else:
        classes = class_indices("cross_entropy", Y, n, m)
        if fuse and _softmax_over_classes(A):
            with name_scope(FUSED_SOFTMAX_SCOPE):
                return softmax_cross_entropy(A.parents[0], Y if isinstance(Y, Tensor) else classes)
        labels = _classes_tensor(Y, classes)
        wrong = PICK_CLASSES.forward(A.data, labels.data) == 0
        loss = lambda: -PICK_CLASSES(A, labels).log().sum() / m  # noqa: E731

    def saturated(count, first):
        return (f"cross_entropy: {count} labelled classes have probability exactly 0 in "
                f"{A.name or 'A'} (first at {_sample_and_class(first, Y)}): "
                f"cross-entropy is +inf there. Compute A as a softmax of logits Z (then the loss "
                f"uses Z), or use softmax_cross_entropy(Z, Y), which is exact for any Z.")

    return _with_probabilities_checked(loss, "cross_entropy", A, "softmax_cross_entropy(Z, Y)",
                                       wrong, saturated)


def _sample_and_class(first, Y):
    """Where the first +inf term is: ``first`` is its (class, sample) index for one-hot labels,
    (sample,) for class indices (whose class is named where it is on the host)."""
    if len(first) == 2:
        return f"index {first}"
    labels = Y.data if isinstance(Y, Tensor) else Y
    if backend.is_foreign_array(labels):
        return f"sample {first[0]}"
    return f"index ({int(np.asarray(labels)[first[0]])}, {first[0]})"


def _softmax_over_classes(A):
    """Whether A was recorded as ``Z.softmax(axis=0)``: read from its node (the primitive and its
    axis), never from its values."""
    node = A.grad_fn
    return node is not None and isinstance(node.op, Softmax) and node.params.get("axis") == 0 \
        and len(node.parents) == 1


def mean_squared_error(A, Y):
    """Squared error for regression: ``L = sum_k (a_k - y_k)^2`` over the output units, and
    ``J = (1/m) sum_i L(i)`` over the m columns (eq 76).

    No 1/2 in front, the same convention as the reference derivation's "mse", so
    dJ/dA[N] = 2 (A[N] - Y) / m (eq 77). The output layer of a regression network has no
    activation (the note after eq 38). A and Y must have the same shape: broadcasting an (m,)
    target against a (1, m) output would silently compare every sample with every other.
    """
    A, Y = as_tensor(A), as_tensor(Y)
    _check_same_shape("mean_squared_error", "predictions A", A, "targets Y", Y)
    if A.ndim == 0:
        raise ShapeError("mean_squared_error: A is a scalar; pass an (n, m) or (m,) array")
    m = A.shape[-1]
    return ((A - Y) ** 2).sum() / m


def _classes_tensor(Y, classes):
    """The labels as the input of pick_classes: a Tensor given is used (detached: labels have
    no gradient), so a compiled step reads each call's labels; anything else as the checked
    indices."""
    return Y.detach() if isinstance(Y, Tensor) else Tensor(classes)


def class_indices(op_name, Y, n_classes, m):
    """``Y`` as m class indices in [0, n_classes), or a clear error: an integer numpy array,
    or, for a Dask array, the array itself, whose values ``pick_classes`` checks inside the
    compute that picks them (checking them here would compute them)."""
    labels = Y.data if isinstance(Y, Tensor) else Y
    if not backend.is_foreign_array(labels):
        labels = np.asarray(labels)
    if tuple(labels.shape) != (m,):
        raise ShapeError(f"{op_name}: class labels Y must have shape ({m},) (one index per "
                         f"sample) or ({n_classes}, {m}) (one-hot columns), got shape "
                         f"{tuple(labels.shape)}")
    kind = backend.dtype_kind(labels.dtype)
    if kind not in "fiu":
        raise TypeError(f"{op_name}: class labels Y must be integers, got dtype {labels.dtype}")
    if backend.of(labels).is_dask:
        return labels
    labels = np.asarray(backend.to_numpy(labels))
    if kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"{op_name}: class labels Y must be whole numbers, got {labels[:5]!r}...")
        labels = labels.astype(np.int64)
    if m and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{op_name}: class labels must lie in [0, {n_classes}) for {n_classes} "
                         f"classes, got values from {labels.min()} to {labels.max()}")
    return labels
