"""Regenerate the computation-graph pictures committed under docs/ (shown by docs/graphs.md and
the README), with the same command a user runs: ``autograd-lite graph``.

    python scripts/make_pictures.py              # writes docs/*.svg
    python scripts/make_pictures.py --out-dir /tmp/pictures

Needs Graphviz's ``dot``. Every picture is seeded (``--seed 0``), so the same versions of
autograd_lite and Graphviz give the same files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograd_lite.cli import main as autograd_lite

# file name -> the `autograd-lite graph` options that draw it
PICTURES = {
    # the seed's 3-4-1 network, eqs 26-29 and the log-loss cost of eqs 1 and 76
    "seed_graph.svg": [],
    # its backward flow: dW, db, dZ, dA with their rules, db's un-broadcast (eq 80), the values
    "seed_backward.svg": ["--backward", "--grads"],
    # values and gradients in every box, boxes coloured by max |gradient|
    "seed_gradients.svg": ["--values", "--grads", "--color", "grad", "--m", "4"],
    # a deliberately wrong derivation (g' evaluated at A[2] instead of Z[2], eq 78) coloured by
    # the comparison report: dA[2] agrees, dZ[2] is where it parts, everything below inherits it
    "seed_wrong_derivation.svg": ["--backward", "--wrong", "g-prime-of-A", "--wrong-layer", "2"],
    # a deeper network, each layer collapsed to one box
    "deep_layers.svg": ["--layers", "3,16,16,16,1", "--activations", "relu,relu,tanh,sigmoid",
                        "--layers-only"],
}


def make_pictures(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, options in PICTURES.items():
        status = autograd_lite(["graph", "--seed", "0", *options, "--output", str(out_dir / name)])
        if status != 0:
            print(f"make_pictures: {name} failed (exit status {status})", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    sys.exit(make_pictures(parser.parse_args().out_dir))
