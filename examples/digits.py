"""Ten classes: handwritten digits 0-9 from 8x8 images (scikit-learn's bundled set, no download).

A [64, 64, 10] network, ReLU hidden layer, and a softmax output read as probabilities of the ten
classes (the note after eq 38), trained with softmax cross-entropy on the logits Z[2] and the
labels as class indices: J = (1/m) sum_i -log softmax(Z[2](i))_y(i) (eqs 1, 76). Every gradient
comes from the engine. Needs the ``examples`` extra: ``pip install "autograd_lite[examples]"``.

    python examples/digits.py [--epochs 30] [--seed 0] [--plot loss.png] [--save model.npz]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autograd_lite import nn, optim, train
from autograd_lite.losses import softmax_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import MAX_HIDDEN, Parser, number, parse, run_or_fail, whole  # noqa: E402

SAMPLES = 1797  # in scikit-learn's digits set
# NOTE: the stratified 80/20 split needs every class of the first N samples in both parts
MIN_SUBSET = 50


def load(subset=None, seed=0, test_fraction=0.2):
    """Train/test columns: X (64, m) with pixels scaled to [0, 1], labels y (m,) in 0..9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    features, labels = data.data / 16.0, data.target.astype(np.int64)  # pixels are 0..16
    if subset is not None:
        features, labels = features[:subset], labels[:subset]
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_fraction, random_state=seed, stratify=labels)
    return X_train.T, y_train, X_test.T, y_test  # samples are columns (eq 25)


def run(epochs=30, hidden=64, lr=0.003, batch_size=32, seed=0, subset=None, plot=None, save=None,
        verbose=True):
    """Train and evaluate; returns the figures the README quotes."""
    train.check_outputs(plot, save)  # before any work: a bad path fails now, not after training
    X_train, y_train, X_test, y_test = load(subset, seed)
    rng = np.random.default_rng(seed)
    model = nn.MLP([X_train.shape[0], hidden, 10], ["relu", "identity"], rng=rng)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = train.fit(model, softmax_cross_entropy, X_train, y_train, optimizer, epochs,
                        batch_size=batch_size, rng=rng, metric=train.accuracy, verbose=verbose)
    test = train.evaluate(model, softmax_cross_entropy, X_test, y_test, train.accuracy)
    if plot:
        history.plot(plot, title="digits: training loss")
    if save:
        model.save(save)
    return {"model": model, "history": history, "m_train": X_train.shape[1],
            "m_test": X_test.shape[1], "train_accuracy": history["accuracy"][-1] if epochs else None,
            "test_loss": test["loss"], "test_accuracy": test["accuracy"]}


def main(argv=None) -> int:
    parser = Parser(prog="digits.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=whole(1), default=30)
    parser.add_argument("--hidden", type=whole(1, MAX_HIDDEN), default=64,
                        help="units in the hidden layer")
    parser.add_argument("--lr", type=number(above=0), default=0.003, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=whole(1), default=32)
    parser.add_argument("--seed", type=whole(0), default=0, help="split, initial W and shuffling")
    parser.add_argument("--subset", type=whole(MIN_SUBSET, SAMPLES), default=None,
                        help=f"use only the first N samples ({MIN_SUBSET} to {SAMPLES})")
    parser.add_argument("--plot", default=None, help="write the loss curve to this image file")
    parser.add_argument("--save", default=None, help="write the trained parameters (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parse(parser, argv)  # a bad option or output path: one line, exit 2, nothing trained
    result = run_or_fail(parser, lambda: run(
        args.epochs, args.hidden, args.lr, args.batch_size, args.seed, args.subset, args.plot,
        args.save, verbose=not args.quiet))
    print(result["model"])
    print(f"digits: {result['m_train']} training / {result['m_test']} test samples, "
          f"{args.epochs} epochs in {result['history'].seconds:.1f} s")
    print(f"test cross-entropy {result['test_loss']:.4f}, test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
