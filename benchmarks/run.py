"""Run the speed benchmarks and print the tables (microseconds, ratios, chain scaling, memory).

    python -m benchmarks.run              # everything (a few minutes on 2 cores)
    python -m benchmarks.run --quick      # fewer rounds, smaller chains: a smoke run
    python -m benchmarks.run --only seed  # workloads whose name contains "seed"
    python -m benchmarks.run --only conv  # the convolution layer alone (benchmarks/conv.py)
    python -m benchmarks.run --backend dask   # the seed network on Dask / a GPU (benchmarks/backends.py)

Every implementation's gradients are checked equal to the hand-written numpy step before
anything is timed; a mismatch stops the run. Timing is interleaved in one process (each round
runs every implementation once, in rotating order) and the median over rounds is reported, so
a noisy neighbour slows all columns alike. Nothing here asserts a time: these are
measurements, not tests (see docs/speed.md).
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time

import numpy as np

import autograd_lite as ag

from . import backends, conv, torch_column
from .workloads import (WORKLOADS, compiled_composed_step_function, compiled_step_function,
                        engine_composed_step, engine_data_step, engine_loss, engine_problem,
                        engine_step, nn_loss, nn_problem, nn_step, numpy_composed_step, numpy_grads,
                        numpy_step)


# --- gradients equal before timing --------------------------------------------------------------

def check_gradients(workload):
    """Engine (and PyTorch) gradients of the first step equal the numpy floor's, or raise."""
    X, Y, W, b = workload.problem()
    J, dW, db = numpy_grads(W, b, X, Y)
    X_t, Y_t, W_t, b_t = engine_problem(X, Y, W, b)
    J_t = engine_loss(W_t, b_t, X_t, Y_t)
    J_t.backward()
    found = [("J", J_t.item(), J)]
    found += [(f"dW[{l + 1}]", p.grad, g) for l, (p, g) in enumerate(zip(W_t, dW))]
    found += [(f"db[{l + 1}]", p.grad, g) for l, (p, g) in enumerate(zip(b_t, db))]
    X_n, Y_n, model, _ = nn_problem(X, Y, W, b)
    J_n = nn_loss(model, X_n, Y_n)
    J_n.backward()
    found += [("nn J", J_n.item(), J)]
    found += [(f"nn dW[{l + 1}]", linear.W.grad, g) for l, (linear, g) in enumerate(zip(model.layers, dW))]
    found += [(f"nn db[{l + 1}]", linear.b.grad, g) for l, (linear, g) in enumerate(zip(model.layers, db))]
    X_c, Y_c, W_c, b_c = engine_problem(X, Y, W, b)
    from autograd_lite.compile import compile as compile_step
    tape = compile_step(lambda X, Y: engine_loss(W_c, b_c, X, Y))
    for _ in range(3):  # trace, check, then the replay whose gradients are compared
        for p in W_c + b_c:
            p.grad = None
        J_c = tape(X_c, Y_c)
    found += [("compiled J", J_c.item(), J)]
    found += [(f"compiled dW[{l + 1}]", p.grad, g) for l, (p, g) in enumerate(zip(W_c, dW))]
    found += [(f"compiled db[{l + 1}]", p.grad, g) for l, (p, g) in enumerate(zip(b_c, db))]
    if torch_column.available():
        X_p, Y_p, W_p, b_p = torch_column.torch_problem(X, Y, W, b)
        J_p = torch_column.torch_loss(W_p, b_p, X_p, Y_p)
        J_p.backward()
        found += [("torch J", J_p.item(), J)]
        found += [(f"torch dW[{l + 1}]", p.grad.numpy(), g) for l, (p, g) in enumerate(zip(W_p, dW))]
        found += [(f"torch db[{l + 1}]", p.grad.numpy(), g) for l, (p, g) in enumerate(zip(b_p, db))]
    for label, value, expected in found:
        if not np.allclose(value, expected, rtol=1e-9, atol=1e-13):
            raise SystemExit(f"{workload.name}: {label} differs from the hand-written numpy step "
                             f"(max |diff| {np.max(np.abs(np.asarray(value) - expected)):.3g}); "
                             f"not timing a wrong answer")


# --- interleaved timing -------------------------------------------------------------------------

def _implementations(workload):
    """name -> a no-argument callable running one training step on its own copy of the problem."""
    return _implementations_and_parameters(workload)[0]


def _implementations_and_parameters(workload):
    """The steps of ``_implementations`` and, for each, a callable giving its current W[l], b[l]
    as ndarrays (W[1..N] then b[1..N]): after the same number of steps they must agree."""
    X, Y, W, b = workload.problem()
    W_np, b_np = [w.copy() for w in W], [v.copy() for v in b]
    steps = {"numpy": lambda: numpy_step(W_np, b_np, X, Y)}
    parameters = {"numpy": lambda: W_np + b_np}
    X_t, Y_t, W_t, b_t = engine_problem(X, Y, W, b)
    steps["autograd_lite"] = lambda: engine_step(W_t, b_t, X_t, Y_t)
    parameters["autograd_lite"] = lambda: [p.data for p in W_t + b_t]
    X_d, Y_d, W_d, b_d = engine_problem(X, Y, W, b)
    steps[".data update"] = lambda: engine_data_step(W_d, b_d, X_d, Y_d)
    parameters[".data update"] = lambda: [p.data for p in W_d + b_d]
    X_n, Y_n, model, optimizer = nn_problem(X, Y, W, b)
    steps["nn"] = lambda: nn_step(model, optimizer, X_n, Y_n)
    parameters["nn"] = lambda: ([linear.W.data for linear in model.layers]
                                + [linear.b.data for linear in model.layers])
    X_c, Y_c, W_c, b_c = engine_problem(X, Y, W, b)
    compiled = compiled_step_function(W_c, b_c)
    steps["compiled"] = lambda: compiled(X_c, Y_c)
    parameters["compiled"] = lambda: [p.data for p in W_c + b_c]
    if torch_column.available():
        X_p, Y_p, W_p, b_p = torch_column.torch_problem(X, Y, W, b)
        steps["torch"] = lambda: torch_column.torch_step(W_p, b_p, X_p, Y_p)
        parameters["torch"] = lambda: [p.detach().numpy() for p in W_p + b_p]
    return steps, parameters


def _composed_implementations(workload):
    """The README's step (eq 1 composed on A[N]): numpy by hand, the engine, ag.compile, each
    on its own copy; after the same number of steps their parameters must agree."""
    X, Y, W, b = workload.problem()
    W_np, b_np = [w.copy() for w in W], [v.copy() for v in b]
    X_t, Y_t, W_t, b_t = engine_problem(X, Y, W, b)
    X_c, Y_c, W_c, b_c = engine_problem(X, Y, W, b)
    compiled = compiled_composed_step_function(W_c, b_c)
    steps = {"numpy": lambda: numpy_composed_step(W_np, b_np, X, Y),
             "autograd_lite": lambda: engine_composed_step(W_t, b_t, X_t, Y_t),
             "compiled": lambda: compiled(X_c, Y_c)}
    parameters = {"numpy": lambda: W_np + b_np,
                  "autograd_lite": lambda: [p.data for p in W_t + b_t],
                  "compiled": lambda: [p.data for p in W_c + b_c]}
    return steps, parameters


def check_composed(workload):
    """Three composed steps of each implementation leave the same parameters, or raise."""
    steps, parameters = _composed_implementations(workload)
    for step in steps.values():
        for _ in range(3):
            step()
    expected = parameters["numpy"]()
    for name in ("autograd_lite", "compiled"):
        for found, wanted in zip(parameters[name](), expected):
            if not np.allclose(found, wanted, rtol=1e-9, atol=1e-13):
                raise SystemExit(f"{workload.name}: the composed step of {name} differs from "
                                 f"numpy's; not timing a wrong answer")


def time_interleaved(steps, budget):
    """Per-step seconds of each implementation, one list entry per round.

    The batch size (``inner``) makes one numpy batch last about a millisecond, so the timer's
    own cost is negligible; the number of rounds fits the time ``budget`` (seconds).
    """
    for step in steps.values():  # warm up caches, BLAS threads, lazy imports
        for _ in range(3):
            step()
    start = time.perf_counter()
    steps["numpy"]()
    numpy_seconds = time.perf_counter() - start
    inner = max(1, int(1e-3 / max(numpy_seconds, 1e-9)))
    start = time.perf_counter()
    for step in steps.values():
        for _ in range(inner):
            step()
    round_seconds = time.perf_counter() - start
    rounds = int(min(301, max(9, budget / max(round_seconds, 1e-9))))
    names = list(steps)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            step = steps[name]
            start = time.perf_counter()
            for _ in range(inner):
                step()
            times[name].append((time.perf_counter() - start) / inner)
    return times, inner, rounds


def _ratio_spread(times, name):
    """Median and quartiles of the per-round ratio name / numpy (the round-to-round noise)."""
    ratios = sorted(a / b for a, b in zip(times[name], times["numpy"]))
    quartiles = statistics.quantiles(ratios, n=4)
    return quartiles[0], quartiles[2]


# --- chain scaling ------------------------------------------------------------------------------

def chain_per_op(n_ops, repeats, collect_garbage=True):
    """Microseconds per op, forward and backward, of ``y = y * 1.0001`` repeated n_ops times on
    a (16, 16) array (median over ``repeats``). ``collect_garbage=False`` runs it with Python's
    cyclic garbage collector paused, to show its share: it walks the live graph (a few
    objects per op) more often as the graph grows."""
    if not collect_garbage:
        gc.disable()
    try:
        return _chain_per_op(n_ops, repeats)
    finally:
        gc.enable()


def _chain_per_op(n_ops, repeats):
    x = ag.Tensor(np.random.default_rng(0).standard_normal((16, 16)), requires_grad=True)
    seed = np.ones((16, 16))
    expected = 1.0001 ** n_ops  # dy/dx, elementwise
    forward, backward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        y = x
        for _ in range(n_ops):
            y = y * 1.0001
        middle = time.perf_counter()
        y.backward(seed)
        end = time.perf_counter()
        forward.append((middle - start) / n_ops * 1e6)
        backward.append((end - middle) / n_ops * 1e6)
        # after timing: a wrong value or gradient stops the run, as in check_gradients
        if not (np.allclose(y.data, x.data * expected, rtol=1e-9)
                and np.allclose(x.grad, expected, rtol=1e-9)):
            raise SystemExit(f"chain of {n_ops} ops: y or dy/dx differs from 1.0001^{n_ops} "
                             f"= {expected!r}; not reporting the time of a wrong answer")
        x.grad = None
        del y
    return statistics.median(forward), statistics.median(backward), expected


# --- peak memory ----------------------------------------------------------------------------------

def peak_memory(step):
    """Peak bytes allocated above the starting level during one step (tracemalloc sees numpy),
    after a first, warming step: the first step may allocate lazily."""
    step()
    return backends.traced_peak(step)


# --- the convolution layer ------------------------------------------------------------------------

def conv_table(workload, budget):
    """The conv layer's forward and backward pass (benchmarks/conv.py) against the same im2col
    math by hand in numpy: checked equal first, then timed interleaved like the steps."""
    conv.check(workload)
    times, inner, rounds = time_interleaved(conv.steps(workload), budget)
    numpy_us = statistics.median(times["numpy"]) * 1e6
    engine_us = statistics.median(times["autograd_lite"]) * 1e6
    low, high = _ratio_spread(times, "autograd_lite")
    print("\n## A convolution layer: forward and backward (dX, dW, db), median per pass\n")
    print("X is C x H x W x m = 32 x 8 x 8 x 128, W is 32 x 32 x 3 x 3, stride 1, padding 1; "
          "the numpy column is the same im2col math by hand (sliding windows, one matmul each "
          "way, col2im). Z and every gradient equal the hand numpy's (rtol 1e-9).\n")
    print("| layer | numpy us | autograd_lite us | ratio | ratio quartiles |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(f"| {workload.name} | {numpy_us:,.1f} | {engine_us:,.1f} | {engine_us / numpy_us:.2f}x | "
          f"{low:.2f}-{high:.2f} ({rounds} rounds x {inner}) |", flush=True)


# --- the report ---------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller chains")
    parser.add_argument("--only", default="", help="only workloads whose name contains this text")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of timing per workload (default 6, quick 1)")
    parser.add_argument("--no-chain", action="store_true", help="skip the chain scaling")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory table")
    parser.add_argument("--no-conv", action="store_true", help="skip the convolution layer")
    parser.add_argument("--backend", choices=("numpy", "dask", "cupy"), default="numpy",
                        help="dask or cupy: the seed network on that backend against numpy "
                             "(benchmarks/backends.py) instead of the tables below")
    args = parser.parse_args(argv)
    if args.backend != "numpy":
        return backends.run(args.backend, args.quick, args.budget)
    budget = args.budget if args.budget is not None else (1.0 if args.quick else 6.0)
    workloads = [w for w in WORKLOADS if args.only in w.name]
    with_conv = not args.no_conv and args.only in conv.CONV.name
    if not workloads and not with_conv:
        raise SystemExit(f"--only {args.only!r} matches no workload; names: "
                         + "; ".join(w.name for w in WORKLOADS + (conv.CONV,)))

    print(f"# autograd_lite speed, {time.strftime('%Y-%m-%d %H:%M')}, Python "
          f"{platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch_column.torch.__version__}" if torch_column.available() else "")
          + f", {platform.machine()}\n")
    if workloads:  # the MLP training steps (--only conv leaves none)
        for workload in workloads:
            check_gradients(workload)
        print("Gradients of every implementation equal the hand-written numpy step's (rtol 1e-9).\n")

        has_torch = torch_column.available()
        header = ("| workload | numpy us | autograd_lite us | ratio | ratio quartiles | "
                  "nn + optim us | nn ratio | compiled us | compiled ratio | .data update us | "
                  ".data ratio |")
        rule = "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        if has_torch:
            header += " torch us | torch ratio |"
            rule += " ---: | ---: |"
        print("## One training step (forward, backward, SGD update), median per step\n")
        print(header)
        print(rule)
        for workload in workloads:
            times, inner, rounds = time_interleaved(_implementations(workload), budget)
            numpy_us = statistics.median(times["numpy"]) * 1e6
            engine_us = statistics.median(times["autograd_lite"]) * 1e6
            low, high = _ratio_spread(times, "autograd_lite")
            row = (f"| {workload.name} | {numpy_us:,.1f} | {engine_us:,.1f} | "
                   f"{engine_us / numpy_us:.2f}x | {low:.2f}-{high:.2f} ({rounds} rounds x {inner}) |")
            nn_us = statistics.median(times["nn"]) * 1e6
            row += f" {nn_us:,.1f} | {nn_us / numpy_us:.2f}x |"
            compiled_us = statistics.median(times["compiled"]) * 1e6
            row += f" {compiled_us:,.1f} | {compiled_us / numpy_us:.2f}x |"
            data_us = statistics.median(times[".data update"]) * 1e6
            row += f" {data_us:,.1f} | {data_us / numpy_us:.2f}x |"
            if has_torch:
                torch_us = statistics.median(times["torch"]) * 1e6
                row += f" {torch_us:,.1f} | {torch_us / numpy_us:.2f}x |"
            print(row, flush=True)

        print("\n## The README's step: eq 1 composed on A[N] (log and all), median per step\n")
        print("| workload | numpy us | autograd_lite us | ratio | compiled us | compiled ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for workload in workloads:
            if workload.layers[-1] != 1 or len(workload.layers) > 4:
                continue  # the seed-like networks the README writes out
            check_composed(workload)
            times, inner, rounds = time_interleaved(_composed_implementations(workload)[0], budget)
            numpy_us = statistics.median(times["numpy"]) * 1e6
            engine_us = statistics.median(times["autograd_lite"]) * 1e6
            compiled_us = statistics.median(times["compiled"]) * 1e6
            print(f"| {workload.name} | {numpy_us:,.1f} | {engine_us:,.1f} | {engine_us / numpy_us:.2f}x "
                  f"| {compiled_us:,.1f} | {compiled_us / numpy_us:.2f}x |", flush=True)

    if with_conv:
        conv_table(conv.CONV, budget)

    if not args.no_chain and workloads:
        print("\n## Chain of N ops `y = y * 1.0001` on a (16, 16) array, us per op\n")
        print("| N | forward us/op | backward us/op | forward, gc paused | backward, gc paused |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        sizes = (100, 1_000, 10_000) if args.quick else (100, 1_000, 10_000, 100_000)
        for n_ops in sizes:
            repeats = max(3, min(201, 200_000 // n_ops)) if not args.quick else 3
            forward, backward, _ = chain_per_op(n_ops, repeats)
            forward_quiet, backward_quiet, _ = chain_per_op(n_ops, repeats, collect_garbage=False)
            print(f"| {n_ops:,} | {forward:.2f} | {backward:.2f} | {forward_quiet:.2f} | "
                  f"{backward_quiet:.2f} |", flush=True)

    if not args.no_memory and workloads:
        print("\n## Peak memory of one step above the starting level (tracemalloc)\n")
        print("| workload | numpy KiB | autograd_lite KiB | ratio | compiled KiB | compiled ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for workload in workloads:
            steps = _implementations(workload)
            numpy_peak = peak_memory(steps["numpy"])
            engine_peak = peak_memory(steps["autograd_lite"])
            steps["compiled"]()  # the trace and check calls run the eager engine: past them
            compiled_peak = peak_memory(steps["compiled"])
            print(f"| {workload.name} | {numpy_peak / 1024:,.1f} | {engine_peak / 1024:,.1f} | "
                  f"{engine_peak / numpy_peak:.2f}x | {compiled_peak / 1024:,.1f} | "
                  f"{compiled_peak / numpy_peak:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
