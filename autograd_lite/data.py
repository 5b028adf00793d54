"""Four binary problems in the plane, made with numpy from a seed: samples as columns.

``make_data(name, m, seed, noise=None)`` gives ``(X, Y)`` with X of shape (2, m) and Y of shape
(1, m) holding 0/1 labels (eq 25: one sample per column), the two classes as balanced as m
allows, the same arrays for the same seed. No download and no scikit-learn: what
``autograd-lite train`` trains on, and small enough to draw.
"""
from __future__ import annotations

import numpy as np


def _labels(m, rng):
    """m labels 0/1 as balanced as m allows (the counts differ by at most one), shuffled so a
    held-out tail of the columns is a fair sample."""
    return rng.permutation(np.arange(m) % 2).astype(np.float64)


def moons(m, noise, rng):
    """Two interleaved half circles (class 0 the upper, class 1 the lower): not linearly
    separable, so the hidden layer has work to do."""
    y = _labels(m, rng)
    angle = rng.uniform(0.0, np.pi, m)
    X = np.stack([np.where(y == 0, np.cos(angle), 1.0 - np.cos(angle)),
                  np.where(y == 0, np.sin(angle), 0.5 - np.sin(angle))])
    return X + noise * rng.standard_normal((2, m)), y[None, :]


def circles(m, noise, rng):
    """A ring of radius 1 (class 0) around a ring of radius 0.5 (class 1)."""
    y = _labels(m, rng)
    angle = rng.uniform(0.0, 2 * np.pi, m)
    radius = np.where(y == 1, 0.5, 1.0)
    X = radius * np.stack([np.cos(angle), np.sin(angle)])
    return X + noise * rng.standard_normal((2, m)), y[None, :]


def xor(m, noise, rng):
    """Points in the four quadrants of [-1, 1]^2; class 1 where x1 and x2 have the same sign."""
    y = _labels(m, rng)
    first = rng.choice([-1.0, 1.0], m)
    second = np.where(y == 1, first, -first)
    X = np.stack([first, second]) * rng.uniform(0.1, 1.0, (2, m))
    return X + noise * rng.standard_normal((2, m)), y[None, :]


def blobs(m, noise, rng):
    """Two Gaussian clouds of standard deviation ``noise`` around (-1, -1) (class 0) and
    (1, 1) (class 1): linearly separable up to their overlap."""
    y = _labels(m, rng)
    centre = np.where(y == 1, 1.0, -1.0)
    return np.stack([centre, centre]) + noise * rng.standard_normal((2, m)), y[None, :]


# name -> (generator, default noise: the standard deviation added to each coordinate)
DATASETS = {"moons": (moons, 0.2), "circles": (circles, 0.1), "xor": (xor, 0.1),
            "blobs": (blobs, 0.8)}
N_INPUTS = 2  # every problem here is in the plane: n[0] = 2


def make_data(name, m, seed, noise=None):
    """``(X, Y)`` of problem ``name``: X is 2 x m, Y is 1 x m of 0/1 (eq 25), the same for the
    same seed."""
    generate, default_noise = DATASETS[name]
    return generate(m, default_noise if noise is None else noise, np.random.default_rng(seed))
