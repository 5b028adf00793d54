"""``autograd-lite train``: train the seed's kind of network on a 2-D toy problem and watch J fall.

    autograd-lite train                                   # moons, 2-8-1 sigmoid, SGD, full batch
    autograd-lite train --data circles --layers 2,8,8,1 --activations tanh,tanh,sigmoid
    autograd-lite train --optimizer adam --lr 0.05 --batch-size 32
    autograd-lite train --epochs 500 --save model.npz --save-optimizer optimizer.npz
    autograd-lite train --epochs 500 --load model.npz --load-optimizer optimizer.npz   # go on
    autograd-lite train --json                            # a summary as data

The data are generated with numpy from ``--seed`` (no download, no scikit-learn): m samples as
columns, X is 2 x m and Y is 1 x m (eq 25), the classes as balanced as m allows; the last
``--test-fraction`` of the columns is held out. The network is ``nn.MLP`` from the shared
options; its output sigmoid (eq 7) is computed inside the fused log-loss
``binary_cross_entropy_with_logits`` (eqs 1, 7, 76), so the model itself outputs the logits
Z[N]. Training is ``train.fit`` with ``optim.SGD`` (eqs 74-75) or ``optim.Adam``.

Exit status (the table in docs/cli.md): 0 trained, 1 the loss became nan or inf (the learning
rate is too large) or a file could not be written at the end, 2 bad options, a file that cannot
be read or does not fit, or an output that cannot be written: all checked before training (one
line on stderr, never a traceback).
"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from .main import (UsageError, add_network_options, backend_namespace, check_output,
                   network_spec, on_backend, write_output)
from ..data import DATASETS, N_INPUTS, make_data
from ..losses import binary_cross_entropy_with_logits
from ..nn import MLP
from ..optim import SGD, Adam
from ..train import accuracy, evaluate, fit


# --- the command --------------------------------------------------------------------------------

def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a network on a 2-D toy problem and print J as it falls",
        description="Train an MLP from the shared network options on a synthetic binary problem "
                    "(samples as columns, eq 25) with the fused log-loss (eqs 1, 7, 76) and SGD "
                    "(eqs 74-75) or Adam; print J and train/test accuracy as it goes.")
    add_network_options(parser, layers=(2, 8, 1), m=200, losses=("log-loss",),
                        activations_help="the last must be sigmoid (train fits the log-loss)")
    parser.add_argument("--data", default="moons", choices=sorted(DATASETS),
                        help="the problem (default moons); X is 2 x m, so --layers starts with 2")
    parser.add_argument("--noise", default=None,
                        help="standard deviation of the noise added to each coordinate (default: "
                             + ", ".join(f"{name} {noise}" for name, (_, noise) in DATASETS.items())
                             + ")")
    parser.add_argument("--test-fraction", default="0.25",
                        help="fraction of the m samples held out for testing (default 0.25)")
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"),
                        help="sgd (eqs 74-75, optional --momentum) or adam (default sgd)")
    parser.add_argument("--lr", default=None,
                        help="learning rate alpha (default: 5.0 for sgd, 0.05 for adam; with "
                             "--load-optimizer: the saved one)")
    parser.add_argument("--momentum", default=None,
                        help="sgd only: momentum in [0, 1) (default 0; with --load-optimizer: "
                             "the saved one)")
    parser.add_argument("--epochs", default="1000", help="passes over the training set (default 1000)")
    parser.add_argument("--batch-size", default=None,
                        help="columns per step (default: all of them, full batch as in the seed; "
                             "smaller batches are shuffled by --seed)")
    parser.add_argument("--every", default=None,
                        help="print a line every this many epochs (default: about ten lines)")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON instead")
    parser.add_argument("--save", default=None, metavar="PATH",
                        help="write the trained parameters here (model.save, an .npz)")
    parser.add_argument("--save-optimizer", default=None, metavar="PATH",
                        help="write the optimizer's state here (optimizer.save), to resume later")
    parser.add_argument("--load", default=None, metavar="PATH",
                        help="start from parameters written by --save (same --layers)")
    parser.add_argument("--load-optimizer", default=None, metavar="PATH",
                        help="start from an optimizer state written by --save-optimizer "
                             "(same --optimizer and --layers)")
    return parser


def run(args) -> int:
    spec = network_spec(args)
    _check_network(spec, args)
    options = _options(args)
    X, Y = make_data(args.data, spec.m, _seeds(spec.seed)[0], options["noise"])
    m_test = round(spec.m * options["test_fraction"])
    if not 1 <= m_test <= spec.m - 1:
        raise UsageError(f"--test-fraction {args.test_fraction} of --m {spec.m} leaves "
                         f"{m_test} test and {spec.m - m_test} training samples; both need at least 1")
    split = spec.m - m_test  # the labels were shuffled, so the last columns are a fair test set
    train_set, test_set = (X[:, :split], Y[:, :split]), (X[:, split:], Y[:, split:])

    model, optimizer = _build(spec, args, options)
    if args.backend != "numpy":
        train_set, test_set = _on_backend(args.backend, model, optimizer, train_set, test_set)
    batch_size = options["batch_size"]
    # NOTE: full batch keeps the column order (no Generator), so a resumed run takes exactly
    # the steps of an uninterrupted one; mini-batches are shuffled by a stream of --seed.
    shuffled = batch_size is not None and batch_size < split
    rng = np.random.default_rng(_seeds(spec.seed)[2]) if shuffled else None
    every = options["every"] or max(1, options["epochs"] // 10)

    summary = _summary(spec, args, options, optimizer, split, m_test, model)
    if not args.json:
        print(_header(summary))
        print(f"{'epoch':>7} {'J':>10} {'train acc':>10} {'test J':>10} {'test acc':>9}")
    try:
        # NOTE: numpy's overflow warnings are silenced: a J that becomes nan or inf is reported
        # by fit in one line naming the epoch and the learning rate instead.
        with np.errstate(over="ignore", invalid="ignore"):
            rows = _train(model, optimizer, train_set, test_set, options["epochs"], every,
                          batch_size, rng, report=None if args.json else (lambda row: print(_row(row))))
    except FloatingPointError as error:
        print(f"autograd-lite: error: {_one_line(error)}", file=sys.stderr)
        return 1

    summary["history"], summary["final"] = rows, rows[-1]
    if not args.json:  # the result first: a save that fails (a full disk) does not hide it
        final = rows[-1]
        print(f"final: after {final['epoch']} epochs J = {final['J']:.6f}, train accuracy "
              f"{100 * final['train_accuracy']:.1f} %, test accuracy "
              f"{100 * final['test_accuracy']:.1f} %")
    _save(model, optimizer, args)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for what, path in (("parameters", args.save), ("optimizer state", args.save_optimizer)):
            if path is not None:
                print(f"saved the {what} to {path}")
    return 0


# --- pieces of run ------------------------------------------------------------------------------

def _seeds(seed):
    """Independent streams of one --seed for the data, the weights and the shuffling, so the
    data do not change with --layers."""
    return np.random.SeedSequence(seed).spawn(3)


def _check_network(spec, args):
    if spec.layers[0] != N_INPUTS:
        raise UsageError(f"--layers {args.layers} starts with n[0] = {spec.layers[0]}, but --data "
                         f"{args.data} has {N_INPUTS} inputs per sample (X is {N_INPUTS} x m)")
    if spec.layers[-1] != 1:
        raise UsageError(f"--layers {args.layers} ends with n[N] = {spec.layers[-1]}; a binary "
                         f"problem needs one output unit (Y is 1 x m)")
    if spec.loss != "log-loss":
        raise UsageError(f"--loss {spec.loss}: train fits with the log-loss of a sigmoid output "
                         f"(eqs 1, 7, 76); use --loss log-loss and a sigmoid last activation")


def _options(args) -> dict:
    """The command's own options, checked; each error names its option."""
    options = {
        "noise": None if args.noise is None else _number(args.noise, "--noise", low=0.0),
        "test_fraction": _number(args.test_fraction, "--test-fraction", low=0.0, high=1.0,
                                 open_low=True, open_high=True),
        "lr": None if args.lr is None else _number(args.lr, "--lr", low=0.0, open_low=True),
        "momentum": None if args.momentum is None else _number(args.momentum, "--momentum",
                                                               low=0.0, high=1.0, open_high=True),
        "epochs": _whole(args.epochs, "--epochs", low=0),
        "batch_size": None if args.batch_size is None else _whole(args.batch_size, "--batch-size", low=1),
        "every": None if args.every is None else _whole(args.every, "--every", low=1),
    }
    if options["momentum"] is not None and args.optimizer != "sgd":
        raise UsageError(f"--momentum applies to --optimizer sgd only, not {args.optimizer}")
    # The outputs are checked now, so a run is never trained in full and then lost to a
    # missing folder; the inputs are read (and every refusal reported) in _build, also before
    # any training.
    for option, path in (("--save", args.save), ("--save-optimizer", args.save_optimizer)):
        if path is not None:
            check_output(option, path)
    if args.save is not None and args.save_optimizer is not None \
            and os.path.realpath(args.save) == os.path.realpath(args.save_optimizer):
        raise UsageError(f"--save and --save-optimizer name the same file {args.save!r}: the "
                         f"optimizer state would replace the parameters")
    return options


def _build(spec, args, options):
    """The model (output: logits Z[N], eq 33; the sigmoid is in the loss) and its optimizer,
    each loaded from its file when asked."""
    hidden = list(spec.activations[:-1])
    model = MLP(spec.layers, hidden + ["identity"], rng=np.random.default_rng(_seeds(spec.seed)[1]))
    if args.optimizer == "sgd":
        optimizer = SGD(model, lr=options["lr"] or 5.0, momentum=options["momentum"] or 0.0)
    else:
        optimizer = Adam(model, lr=options["lr"] or 0.05)
    for option, path, target in (("--load", args.load, model),
                                 ("--load-optimizer", args.load_optimizer, optimizer)):
        if path is not None:
            try:
                target.load(path)
            except (OSError, ValueError) as error:  # files.BadFileError: one line naming the file
                # the Python way out (allow_nonfinite=True) is no option of this command
                message = _one_line(error).replace("; pass allow_nonfinite=True to load them "
                                                   "anyway", "")
                raise UsageError(f"{option}: {message}") from None
    # The saved hyperparameters replace ours on load; an option given explicitly wins over them.
    if options["lr"] is not None:
        optimizer.lr = options["lr"]
    if options["momentum"] is not None:
        optimizer.momentum = options["momentum"]
    return model, optimizer


def _on_backend(name, model, optimizer, train_set, test_set):
    """The data on ``--backend`` (Dask: in chunks of samples), and the model with it, its
    optimizer's state following (Dask: the parameters stay numpy's, which Dask's graphs embed;
    backward computes their gradients in one compute)."""
    moved = [on_backend({"X": X, "Y": Y}, name) for X, Y in (train_set, test_set)]
    if name != "dask":
        model.to(backend_namespace(name))
        optimizer.load_state_dict(optimizer.state_dict())  # its buffers where the model is
    return [(data["X"], data["Y"]) for data in moved]


def _train(model, optimizer, train_set, test_set, epochs, every, batch_size, rng, report):
    """``train.fit`` in chunks of ``every`` epochs, scoring both sets before the first and after
    each chunk; returns the rows (epoch 0 first)."""
    rows, done = [], 0
    while True:
        rows.append(_scores(model, done, train_set, test_set))
        if report is not None:
            report(rows[-1])
        if done == epochs:
            return rows
        chunk = min(every, epochs - done)
        fit(model, binary_cross_entropy_with_logits, *train_set, optimizer, chunk,
            batch_size=batch_size, rng=rng, verbose=False, progress=False)
        done += chunk


def _scores(model, epoch, train_set, test_set) -> dict:
    """J and accuracy on both sets with the current parameters, under no_grad."""
    train = evaluate(model, binary_cross_entropy_with_logits, *train_set, metric=accuracy)
    test = evaluate(model, binary_cross_entropy_with_logits, *test_set, metric=accuracy)
    return {"epoch": epoch, "J": train["loss"], "train_accuracy": train["accuracy"],
            "test_J": test["loss"], "test_accuracy": test["accuracy"]}


def _save(model, optimizer, args):
    for option, path, source in (("--save", args.save, model),
                                 ("--save-optimizer", args.save_optimizer, optimizer)):
        if path is not None:
            write_output(option, path, lambda source=source, path=path: source.save(path))


# --- printing -----------------------------------------------------------------------------------

def _summary(spec, args, options, optimizer, m_train, m_test, model) -> dict:
    state = optimizer.state_dict()
    return {
        "network": {"layers": list(spec.layers), "activations": list(spec.activations),
                    "loss": "binary_cross_entropy_with_logits (eqs 1, 7, 76)",
                    "parameters": model.num_parameters()},
        "data": {"name": args.data, "noise": options["noise"] if options["noise"] is not None
                 else DATASETS[args.data][1], "seed": spec.seed, "m": spec.m,
                 "m_train": m_train, "m_test": m_test},
        "optimizer": {"name": state["optimizer"], **state["hyperparameters"],
                      "steps_before": state["steps"]},
        "batch_size": options["batch_size"], "epochs": options["epochs"],
        "loaded": {"model": args.load, "optimizer": args.load_optimizer},
        "saved": {"model": args.save, "optimizer": args.save_optimizer},
    }


def _header(summary) -> str:
    network, data, optimizer = summary["network"], summary["data"], summary["optimizer"]
    settings = ", ".join(f"{key} {value}" for key, value in optimizer.items()
                         if key not in ("name", "steps_before"))
    batch = "full batch" if summary["batch_size"] is None else f"batches of {summary['batch_size']}"
    lines = [
        f"network: {'-'.join(map(str, network['layers']))} ({', '.join(network['activations'])}), "
        f"{network['parameters']} parameters; J = log-loss of sigmoid(Z[{len(network['layers']) - 1}]), "
        f"fused (eqs 1, 7, 76)",
        f"data: {data['name']} (noise {data['noise']}, seed {data['seed']}), m = {data['m']}: "
        f"{data['m_train']} training and {data['m_test']} test columns (eq 25)",
        f"optimizer: {optimizer['name']} ({settings}), {batch}, {summary['epochs']} epochs",
    ]
    loaded = [f"{what} from {path}" for what, path in summary["loaded"].items() if path]
    if loaded:
        lines.append(f"resumed: {', '.join(loaded)} ({optimizer['steps_before']} steps taken before)")
    return "\n".join(lines)


def _row(row) -> str:
    return (f"{row['epoch']:>7} {row['J']:>10.6f} {100 * row['train_accuracy']:>8.1f} % "
            f"{row['test_J']:>10.6f} {100 * row['test_accuracy']:>7.1f} %")


# --- option parsing -----------------------------------------------------------------------------

def _number(text, option, low=None, high=None, open_low=False, open_high=False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} must be a number, got {text!r}") from None
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if not math.isfinite(value) or too_low or too_high:
        bounds = f"{'(' if open_low else '['}{low:g}, {'inf' if high is None else f'{high:g}'}" \
                 f"{')' if open_high or high is None else ']'}"
        raise UsageError(f"{option} must lie in {bounds}, got {text}")
    return value


def _whole(text, option, low) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option} must be a whole number, got {text!r}") from None
    if value < low:
        raise UsageError(f"{option} must be at least {low}, got {value}")
    return value


def _one_line(error) -> str:
    return " ".join(str(error).split())
