"""The seed's 3-4-1 network, built from autograd_lite's primitives and checked by hand.

Run:  python examples/seed_network.py  [--m 5] [--seed 0] [--steps 2000] [--alpha 1.0] [--html FILE]
(the same as ``autograd-lite demo``). The code lives in ``autograd_lite/cli_demo.py`` so the
installed command can run it; read it there:

1. Forward (eqs 26-29) with the seed's names, every shape beside eqs 35-38 (``forward``).
2. Backward by ``J.backward()`` beside eqs 77-84 written out in numpy (``hand_derivation``).
3. Training by gradient descent, eqs 74-75 (``train``).
"""
from autograd_lite.cli_demo import (forward, hand_derivation, main, make_parameters,  # noqa: F401
                                    separable_problem, train)

if __name__ == "__main__":
    raise SystemExit(main())
