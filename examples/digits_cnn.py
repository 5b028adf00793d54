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

    python examples/digits_cnn.py [--model cnn|mlp] [--epochs 30] [--seed 0] [--save model.npz]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from autograd_lite import nn, optim, train
from autograd_lite.losses import softmax_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import load  # noqa: E402  - the same split and scaling as examples/digits.py


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


def run(model="cnn", epochs=30, lr=0.003, batch_size=32, seed=0, subset=None, save=None,
        verbose=True):
    """Train on the split of ``seed`` and measure on its held-out 20 %; returns the figures
    docs/nn.md quotes."""
    X_train, y_train, X_test, y_test = load(subset, seed)
    rng = np.random.default_rng(seed)
    network = MODELS[model](rng)
    optimizer = optim.Adam(network.parameters(), lr=lr)
    network.train()
    history = train.fit(network, softmax_cross_entropy, X_train, y_train, optimizer, epochs,
                        batch_size=batch_size, rng=rng, metric=train.accuracy, verbose=verbose)
    network.eval()
    test = train.evaluate(network, softmax_cross_entropy, X_test, y_test, train.accuracy)
    if save:
        network.save(save)
    return {"model": network, "history": history, "m_train": X_train.shape[1],
            "m_test": X_test.shape[1], "test_loss": test["loss"], "test_accuracy": test["accuracy"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.003, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="split, initial W, dropout, shuffling")
    parser.add_argument("--subset", type=int, default=None, help="use only the first N samples")
    parser.add_argument("--save", default=None, help="write the trained parameters and "
                        "BatchNorm statistics (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = parser.parse_args(argv)
    result = run(args.model, args.epochs, args.lr, args.batch_size, args.seed, args.subset,
                 args.save, verbose=not args.quiet)
    print(result["model"])
    print(f"digits ({args.model}): {result['m_train']} training / {result['m_test']} test "
          f"samples, {args.epochs} epochs in {result['history'].seconds:.1f} s")
    print(f"test cross-entropy {result['test_loss']:.4f}, test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
