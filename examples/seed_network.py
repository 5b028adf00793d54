"""The seed's 3-4-1 network, built from autograd_lite's primitives and checked by hand.

Run:  python examples/seed_network.py  [--m 5] [--seed 0] [--steps 2000] [--alpha 1.0] [--html FILE]
(the same as ``autograd-lite demo``). The code lives in ``autograd_lite/cli/demo.py`` so the
installed command can run it; read it there:

1. Forward (eqs 26-29) with the seed's names, every shape beside eqs 35-38 (``forward``).
2. Backward by ``J.backward()`` beside eqs 77-84 written out in numpy (``hand_derivation``).
3. Training by gradient descent, eqs 74-75 (``train``).
"""
import argparse
import sys
from pathlib import Path

from autograd_lite.cli import USAGE, UsageError
from autograd_lite.cli.demo import (add_options, forward, hand_derivation,  # noqa: F401
                                    make_parameters, run, separable_problem, train)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import Parser, parse  # noqa: E402

def main(argv=None) -> int:
    parser = Parser(prog="seed_network.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    args = parse(parser, argv)
    try:
        return run(args)  # refuses its own bad options (UsageError) before any work
    except UsageError as error:
        parser.exit(USAGE, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    raise SystemExit(main())
