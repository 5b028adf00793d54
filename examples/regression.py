"""Regression: disease progression one year on, from ten baseline measurements.

scikit-learn's bundled diabetes set (442 patients; no download). A [10, 16, 1] network with a
tanh hidden layer and, as the seed notes for regression, no activation on the output (the note
after eq 38: A[2] = Z[2]), trained on the mean squared error J = (1/m) sum_i (a(i) - y(i))^2
(eq 76). The baseline is the mean predictor (always the training mean); the report gives both
test errors and R^2 = 1 - MSE / MSE(baseline). Needs the ``examples`` extra:
``pip install "autograd_lite[examples]"``.

    python examples/regression.py [--epochs 100] [--seed 0] [--plot loss.png] [--save model.npz]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autograd_lite import nn, no_grad, optim, train
from autograd_lite.losses import mean_squared_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import MAX_HIDDEN, Parser, number, parse, run_or_fail, whole  # noqa: E402

SAMPLES = 442  # in scikit-learn's diabetes set


def load(subset=None, seed=0, test_fraction=0.2):
    """Standardised train/test columns X (10, m), Y (1, m), and Y's training mean and std."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    data = load_diabetes()
    features, targets = data.data, data.target.astype(np.float64)
    if subset is not None:
        features, targets = features[:subset], targets[:subset]
    X_train, X_test, y_train, y_test = train_test_split(
        features, targets, test_size=test_fraction, random_state=seed)
    # NOTE: statistics of the training part only, so the test set stays unseen. Standardising
    # the target as well keeps J near 1 at the start, whatever the target's units.
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-12
    y_mean, y_std = y_train.mean(), y_train.std()
    columns = lambda features: ((features - mean) / std).T  # samples are columns (eq 25)
    scale = lambda targets: ((targets - y_mean) / y_std)[None, :]
    return columns(X_train), scale(y_train), columns(X_test), scale(y_test), y_mean, y_std


def run(epochs=100, hidden=16, lr=0.003, batch_size=32, weight_decay=0.1, seed=0, subset=None,
        plot=None, save=None, verbose=True):
    """Train and evaluate; errors are reported in the target's own units."""
    train.check_outputs(plot, save)  # before any work: a bad path fails now, not after training
    X_train, Y_train, X_test, Y_test, y_mean, y_std = load(subset, seed)
    rng = np.random.default_rng(seed)
    model = nn.MLP([X_train.shape[0], hidden, 1], ["tanh", "identity"], rng=rng)
    optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = train.fit(model, mean_squared_error, X_train, Y_train, optimizer, epochs,
                        batch_size=batch_size, rng=rng, verbose=verbose)
    with no_grad():
        predicted = model(X_test).data
    units = lambda Y: Y * y_std + y_mean
    test_mse = float(np.mean((units(predicted) - units(Y_test)) ** 2))
    # The mean predictor: the training mean (0 after standardising) for every test sample.
    baseline_mse = float(np.mean((y_mean - units(Y_test)) ** 2))
    if plot:
        history.plot(plot, title="diabetes regression: training loss")
    if save:
        model.save(save)
    return {"model": model, "history": history, "m_train": X_train.shape[1],
            "m_test": X_test.shape[1], "test_mse": test_mse, "baseline_mse": baseline_mse,
            "r2": 1.0 - test_mse / baseline_mse}


def main(argv=None) -> int:
    parser = Parser(prog="regression.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=whole(1), default=100)
    parser.add_argument("--hidden", type=whole(1, MAX_HIDDEN), default=16,
                        help="units in the hidden layer")
    parser.add_argument("--lr", type=number(above=0), default=0.003, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=whole(1), default=32)
    parser.add_argument("--weight-decay", type=number(at_least=0), default=0.1,
                        help="L2 penalty (Adam's weight_decay)")
    parser.add_argument("--seed", type=whole(0), default=0, help="split, initial W and shuffling")
    # NOTE: at least 10, so that the 20 % test part has 2 patients and the training part 8
    parser.add_argument("--subset", type=whole(10, SAMPLES), default=None,
                        help="use only the first N samples (10 to 442)")
    parser.add_argument("--plot", default=None, help="write the loss curve to this image file")
    parser.add_argument("--save", default=None, help="write the trained parameters (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parse(parser, argv)  # a bad option or output path: one line, exit 2, nothing trained
    result = run_or_fail(parser, lambda: run(
        args.epochs, args.hidden, args.lr, args.batch_size, args.weight_decay, args.seed,
        args.subset, args.plot, args.save, verbose=not args.quiet))
    print(result["model"])
    print(f"diabetes: {result['m_train']} training / {result['m_test']} test samples, "
          f"{args.epochs} epochs in {result['history'].seconds:.1f} s")
    print(f"test MSE {result['test_mse']:.1f} (RMSE {result['test_mse'] ** 0.5:.1f}) against the "
          f"mean predictor's {result['baseline_mse']:.1f} (RMSE {result['baseline_mse'] ** 0.5:.1f}); "
          f"R^2 = {result['r2']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
