"""The seed's binary case on real data: benign or malignant, from 30 tumour measurements.

scikit-learn's bundled Wisconsin breast-cancer set (569 samples; no download), a [30, 16, 1]
network with the seed's sigmoid in the hidden layer: Z[1] = W[1] X + b[1], A[1] = s(Z[1]), Z[2] = W[2] A[1] + b[2] (eqs 33-34), and the
log-loss of sigmoid(Z[2]) (eqs 1, 7, 76) in its fused, stable form. Every gradient comes from
the engine. Needs the ``examples`` extra: ``pip install "autograd_lite[examples]"``.

    python examples/breast_cancer.py [--epochs 100] [--seed 0] [--plot loss.png] [--save model.npz]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autograd_lite import nn, optim, train
from autograd_lite.losses import binary_cross_entropy_with_logits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import MAX_HIDDEN, Parser, number, parse, run_or_fail, whole  # noqa: E402

SAMPLES = 569  # in scikit-learn's breast-cancer set


def load(subset=None, seed=0, test_fraction=0.2):
    """Standardised train/test columns: X (30, m), Y (1, m) with 1 = malignant."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    features, labels = data.data, (data.target == 0).astype(np.float64)  # sklearn: 0 = malignant
    if subset is not None:
        features, labels = features[:subset], labels[:subset]
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_fraction, random_state=seed, stratify=labels)
    # NOTE: statistics of the training part only, so the test set stays unseen.
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-12
    columns = lambda features: ((features - mean) / std).T  # samples are columns (eq 25)
    return columns(X_train), y_train[None, :], columns(X_test), y_test[None, :]


def run(epochs=100, hidden=16, activation="sigmoid", lr=0.001, batch_size=32, seed=0, subset=None, plot=None, save=None,
        verbose=True):
    """Train and evaluate; returns the figures the README quotes."""
    train.check_outputs(plot, save)  # before any work: a bad path fails now, not after training
    X_train, Y_train, X_test, Y_test = load(subset, seed)
    rng = np.random.default_rng(seed)
    model = nn.MLP([X_train.shape[0], hidden, 1], [activation, "identity"], rng=rng)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = train.fit(model, binary_cross_entropy_with_logits, X_train, Y_train, optimizer,
                        epochs, batch_size=batch_size, rng=rng, metric=train.accuracy,
                        verbose=verbose)
    test = train.evaluate(model, binary_cross_entropy_with_logits, X_test, Y_test, train.accuracy)
    if plot:
        history.plot(plot, title="breast cancer: training loss")
    if save:
        model.save(save)
    return {"model": model, "history": history, "m_train": X_train.shape[1],
            "m_test": X_test.shape[1], "train_accuracy": history["accuracy"][-1] if epochs else None,
            "test_loss": test["loss"], "test_accuracy": test["accuracy"]}


def main(argv=None) -> int:
    parser = Parser(prog="breast_cancer.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=whole(1), default=100)
    parser.add_argument("--hidden", type=whole(1, MAX_HIDDEN), default=16,
                        help="units in the hidden layer")
    parser.add_argument("--activation", default="sigmoid", choices=("sigmoid", "tanh", "relu"),
                        help="g[1] of the hidden layer (default: the seed's sigmoid)")
    parser.add_argument("--lr", type=number(above=0), default=0.001, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=whole(1), default=32)
    parser.add_argument("--seed", type=whole(0), default=0, help="split, initial W and shuffling")
    # NOTE: at least 50, so that both classes reach the stratified 80/20 split
    parser.add_argument("--subset", type=whole(50, SAMPLES), default=None,
                        help="use only the first N samples (50 to 569)")
    parser.add_argument("--plot", default=None, help="write the loss curve to this image file")
    parser.add_argument("--save", default=None, help="write the trained parameters (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parse(parser, argv)  # a bad option or output path: one line, exit 2, nothing trained
    result = run_or_fail(parser, lambda: run(
        args.epochs, args.hidden, args.activation, args.lr, args.batch_size, args.seed,
        args.subset, args.plot, args.save, verbose=not args.quiet))
    print(result["model"])
    print(f"breast cancer: {result['m_train']} training / {result['m_test']} test samples, "
          f"{args.epochs} epochs in {result['history'].seconds:.1f} s")
    print(f"test log-loss {result['test_loss']:.4f}, test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
