"""Handwritten digits 0-9 (scikit-learn's bundled 8x8 images, no download) with a small CNN, or
with an MLP regularised by dropout and batch normalisation.

The images are C x H x W x m = 1 x 8 x 8 x m (samples last, as columns are in the seed): the
network first turns each 64-pixel column back into an image (``Unflatten``), convolves and
pools it, and ``Flatten`` gives the columns a ``Linear`` takes (eq 33). The loss is softmax
cross-entropy on the logits with class indices as labels (eqs 1, 76); every gradient, through
convolution, pooling, dropout and batch normalisation, comes from the engine.

``model.train()`` before fitting and ``model.eval()`` before measuring: dropout is then the
identity and batch normalisation uses its running statistics. Needs the ``examples`` extra:
``pip install "autograd_lite[examples]"``.

``--compile`` trains with a compiled step, ``step = ag.compile(lambda X, y: loss(model(X), y))``
(``fit_compiled``): the first two calls for each batch shape run eagerly (trace, then check),
every later one replays the traced numpy calls, drawing new dropout masks and updating
BatchNorm's running statistics as the eager step does. The uneven last mini-batch
(1437 = 44 x 32 + 29) gets a program of its own. Same seed, same losses and parameters.

    python examples/digits_cnn.py [--model cnn|mlp] [--epochs 30] [--seed 0] [--compile]
                                  [--save model.npz]
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

import autograd_lite as ag
from autograd_lite import nn, optim, train
from autograd_lite.cli import UsageError
from autograd_lite.losses import softmax_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import Parser, number, parse, run_or_fail, whole  # noqa: E402
from digits import MIN_SUBSET, SAMPLES, load  # noqa: E402  - the split and scaling of digits.py


def cnn(rng):
    """1x8x8 -> conv 3x3 (16) -> BN -> ReLU -> conv 3x3 (32) -> BN -> ReLU -> max pool 2
    -> 32x4x4 -> dropout -> linear 10."""
    return nn.Sequential(
        nn.Unflatten((1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.BatchNorm(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.BatchNorm(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25, rng=rng),
        nn.Linear(32 * 4 * 4, 10, rng=rng))


def mlp(rng):
    """64 -> linear 128 -> BN -> ReLU -> dropout -> linear 10."""
    return nn.Sequential(
        nn.Linear(64, 128, init="he", rng=rng), nn.BatchNorm(128), nn.ReLU(),
        nn.Dropout(0.3, rng=rng),
        nn.Linear(128, 10, rng=rng))


MODELS = {"cnn": cnn, "mlp": mlp}


def fit_compiled(network, loss, X, y, optimizer, epochs, batch_size, rng, verbose=True,
                 stream=None):
    """``train.fit``'s loop with the forward and backward pass compiled: per epoch the columns
    are shuffled by ``rng``, then per mini-batch ``optimizer.zero_grad()``, the compiled step
    (J, and dJ/dp added to every ``p.grad``) and ``optimizer.step()`` (eqs 74-75). The same
    draws from ``rng`` in the same order as ``fit``, so the same seed gives the same run.
    Returns a ``train.History`` of the mean loss per epoch (no metric: the compiled step
    returns J alone) whose ``epoch_seconds`` lists each epoch's wall time."""
    step = ag.compile(lambda X_batch, y_batch: loss(network(X_batch), y_batch))
    stream = sys.stderr if stream is None else stream
    history = train.History()
    history.epoch_seconds = []
    m = X.shape[1]
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        epoch_started = time.monotonic()
        total = 0.0
        for batch, index in enumerate(train.batches(m, batch_size, rng), start=1):
            optimizer.zero_grad()
            value = step(X[:, index], y[index]).item()  # labels: class indices, as eagerly
            if not math.isfinite(value):
                raise FloatingPointError(f"fit_compiled stopped at epoch {epoch}, batch {batch}: "
                                         f"the loss became {value}; that step was not taken")
            optimizer.step()
            total += value * len(index)
        history.record(epoch, total / m, {})
        history.epoch_seconds.append(time.monotonic() - epoch_started)
        if verbose:
            stream.write(f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {total / m:.4f}  "
                         f"{history.epoch_seconds[-1]:.2f} s\n")
            stream.flush()
    history.seconds = time.monotonic() - started
    history.programs = step.programs
    return history


def run(model="cnn", epochs=30, lr=0.003, batch_size=32, seed=0, subset=None, save=None,
        verbose=True, compile=False):
    """Train on the split of ``seed`` (eagerly with ``train.fit``, or with a compiled step:
    ``fit_compiled``) and measure on its held-out 20 %; returns the figures docs/nn.md quotes."""
    X_train, y_train, X_test, y_test = load(subset, seed)
    rng = np.random.default_rng(seed)
    network = MODELS[model](rng)
    optimizer = optim.Adam(network.parameters(), lr=lr)
    network.train()
    if compile:
        history = fit_compiled(network, softmax_cross_entropy, X_train, y_train, optimizer,
                               epochs, batch_size, rng, verbose=verbose)
    else:
        history = train.fit(network, softmax_cross_entropy, X_train, y_train, optimizer, epochs,
                            batch_size=batch_size, rng=rng, metric=train.accuracy,
                            verbose=verbose)
    network.eval()
    test = train.evaluate(network, softmax_cross_entropy, X_test, y_test, train.accuracy)
    if save:
        network.save(save)
    return {"model": network, "history": history, "m_train": X_train.shape[1],
            "m_test": X_test.shape[1], "test_loss": test["loss"], "test_accuracy": test["accuracy"]}


def check_batches(args):
    """The MLP's BatchNorm normalises each unit over the samples of a mini-batch, and refuses a
    batch of one sample (no variance): refuse, before any work, a --batch-size that makes one,
    the last batch included (the 80/20 split keeps m - ceil(0.2 m) training samples)."""
    if args.model != "mlp":
        return  # the CNN's BatchNorm also averages over the 8 x 8 pixels: one sample is enough
    m = args.subset or SAMPLES
    m_train = m - math.ceil(0.2 * m)
    if args.batch_size == 1 or m_train % args.batch_size == 1:
        raise UsageError(f"--batch-size {args.batch_size} leaves a mini-batch of one sample (of "
                         f"{m_train} training samples), which BatchNorm cannot normalise; choose "
                         f"another")


def main(argv=None) -> int:
    parser = Parser(prog="digits_cnn.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    parser.add_argument("--epochs", type=whole(1), default=30)
    parser.add_argument("--lr", type=number(above=0), default=0.003, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=whole(1), default=32)
    parser.add_argument("--seed", type=whole(0), default=0,
                        help="split, initial W, dropout, shuffling")
    parser.add_argument("--subset", type=whole(MIN_SUBSET, SAMPLES), default=None,
                        help=f"use only the first N samples ({MIN_SUBSET} to {SAMPLES})")
    parser.add_argument("--compile", action="store_true",
                        help="train with a compiled step (ag.compile) and print each epoch's time")
    parser.add_argument("--save", default=None, help="write the trained parameters and "
                        "BatchNorm statistics (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parse(parser, argv, check_batches)  # a bad option: one line, exit 2, nothing trained
    result = run_or_fail(parser, lambda: run(
        args.model, args.epochs, args.lr, args.batch_size, args.seed, args.subset, args.save,
        verbose=not args.quiet, compile=args.compile))
    history = result["history"]
    print(result["model"])
    print(f"digits ({args.model}): {result['m_train']} training / {result['m_test']} test "
          f"samples, {args.epochs} epochs in {history.seconds:.1f} s, "
          f"{history.seconds / args.epochs:.3f} s per epoch "
          + (f"(compiled; the first epoch, which traces, {history.epoch_seconds[0]:.3f} s)"
             if args.compile else "(eager)"))
    print(f"test cross-entropy {result['test_loss']:.4f}, test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
