"""``autograd-lite check``: autodiff vs the hand derivation vs finite differences, per layer.

    autograd-lite check --layers 3,4,1 --activations sigmoid,sigmoid --m 5
    autograd-lite check --wrong eq55 --wrong-layer 1      # see what a wrong derivation looks like
    autograd-lite check --json                            # the same report as data
    autograd-lite check --fused                           # add the fused-vs-composed log-loss table

It builds a seeded random network from the shared network options, runs
``autograd_lite.check.compare`` on it and prints the report (see docs/check.md for how to read
it). Exit status: 0 when the three ways agree everywhere, 1 when a check fails, 2 for bad
options (one line on stderr, never a traceback).
"""
from __future__ import annotations

import json
import math

from .. import reference as ref
from ..check import compare, fused_vs_composed
from .main import (UsageError, add_network_options, add_wrong_options, network_spec, on_backend,
                   random_network, wrong_rules)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "check", help="compare autodiff with the hand derivation (eqs 77-84) and finite differences",
        description="Compute dA, dZ, dW, db of every layer of a seeded random network three ways "
                    "(autodiff, the seed's hand derivation eqs 77-84, central finite differences) "
                    "and report where they agree and the first quantity where they part.")
    add_network_options(parser)
    add_wrong_options(parser, "run the hand derivation with one deliberately wrong rule, to see "
                              "how the report names it")
    parser.add_argument("--convention", default="seed", choices=ref.CONVENTIONS,
                        help="where the hand derivation puts eq 76's 1/m: seed (in dW, db; "
                             "eqs 79-80, 83-84) or autodiff (in dA[N], eq 77). Default: seed")
    parser.add_argument("--max-numeric", default="256",
                        help="finite differences on at most this many elements per quantity "
                             "(a random sample beyond it; default 256)")
    parser.add_argument("--fused", action="store_true",
                        help="also compare the composed and the fused log-loss near saturation")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def run(args) -> int:
    spec = network_spec(args)
    rules = wrong_rules(args, len(spec.layers) - 1) or ref.SEED_RULES
    max_numeric = _count(args.max_numeric, "--max-numeric")
    arrays = on_backend(random_network(spec), args.backend)
    try:
        result = compare(arrays["W"], arrays["b"], arrays["X"], arrays["Y"], spec.activations,
                         spec.loss, rules=rules, convention=args.convention,
                         max_numeric=max_numeric, seed=spec.seed)
    except ValueError as error:  # a network the reference refuses: still a usage problem
        raise UsageError(str(error)) from None
    fused = fused_vs_composed() if args.fused else None
    if args.json:
        data = result.to_dict()
        if fused is not None:
            data["fused_vs_composed"] = fused.to_dict()
        print(json.dumps(data, indent=2))
    else:
        print(result)
        if fused is not None:
            print()
            print(fused)
    return 0 if result.passed else 1


def _count(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option} must be a whole number, got {text!r}") from None
    if value < 1:
        raise UsageError(f"{option} must be at least 1, got {value}")
    return value
