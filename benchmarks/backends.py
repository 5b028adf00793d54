"""The seed network on other backends: Dask (threaded) and CuPy (a GPU), against numpy.

    python -m benchmarks.run --backend dask    # m = 10^7 in chunks of 10^6 (--quick: 10^6 in 10^5)
    python -m benchmarks.run --backend cupy    # m = 10^6 and 10^7 on the GPU; skips without one

Each row times forward + backward (J and every dW[l], db[l]; eqs 33-34, 76, 77-84) of the seed's
3-4-1 network on the same seeded data: by hand in numpy (the floor), the engine on numpy
arrays, and the engine on the other backend (the same Tensor code, X and Y of that backend).
The gradients are checked equal to the hand numpy's first (1e-12 relative on Dask, whose chunks
sum in another order; 1e-9 on a GPU, whose reductions are its own); a mismatch stops the run.
Rounds are interleaved (each runs every implementation once, in rotating order) and the median
is reported. Peak memory is measured two ways: tracemalloc's peak above the starting level
during one step (numpy's allocations in every thread, Dask's workers included), and, on Linux,
the whole process's peak resident memory above its level before the step, one fresh process
per implementation (``/proc/self/status``'s VmHWM after resetting it: Python, Dask's scheduler,
the allocator's slack, everything). The Dask rows end with the same step on a ``LocalCluster``
of two worker processes: its J and gradients against numpy's, as relative differences.
Nothing here asserts a time (docs/speed.md, docs/backends.md).
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import autograd_lite as ag

from .workloads import Workload, engine_loss, numpy_grads

SEED = (3, 4, 1)


def seed_problem(m):
    """The seeded X (3, m), Y (1, m), W[l], b[l] of the benchmark's seed workload."""
    return Workload(f"seed [3,4,1], m = {m:,}", SEED, m).problem()


def engine_grads(W, b, X, Y):
    """J and the gradients from the engine: leaves W[l], b[l] as given, ``J.backward()``."""
    W_t = [ag.Tensor(w, requires_grad=True) for w in W]
    b_t = [ag.Tensor(v, requires_grad=True) for v in b]
    J = engine_loss(W_t, b_t, ag.Tensor(X), ag.Tensor(Y))
    J.backward()
    return J, [p.grad for p in W_t], [p.grad for p in b_t]


def assert_same_gradients(label, found, expected, rtol):
    """``found`` = (J, [dW], [db]) equal to ``expected`` to ``rtol`` of each array's largest
    entry, or the run stops: a wrong answer is not timed."""
    J, dW, db = found
    pairs = [("J", ag.to_numpy(J), expected[0])]
    pairs += [(f"dW[{l + 1}]", ag.to_numpy(g), e) for l, (g, e) in enumerate(zip(dW, expected[1]))]
    pairs += [(f"db[{l + 1}]", ag.to_numpy(g), e) for l, (g, e) in enumerate(zip(db, expected[2]))]
    for name, value, wanted in pairs:
        scale = max(float(np.max(np.abs(wanted))), np.finfo(np.float64).tiny)
        error = float(np.max(np.abs(np.asarray(value) - wanted)))
        if not error <= rtol * scale:
            raise SystemExit(f"{label}: {name} differs from the hand-written numpy step by "
                             f"{error:.3g} (relative {error / scale:.3g}); not timing a wrong answer")


def interleaved(steps, rounds):
    """Seconds per call of each step, one entry per round, in rotating order (after one warm-up
    call each)."""
    for step in steps.values():
        step()
    names = list(steps)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def traced_peak(step):
    """Peak bytes tracemalloc sees allocated above the starting level during one call."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before


def resident_kib(field):
    """A ``/proc/self/status`` field of this process in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def resident_peak(name, m, chunk):
    """Bytes the whole process's peak resident memory rises above its level before one step of
    ``name`` (made by ``dask_steps``), in a fresh process (spawned: nothing of this one's heap);
    None where the kernel cannot reset the peak (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_resident_peak_here, (name, m, chunk))


def _resident_peak_here(name, m, chunk):
    import dask

    with dask.config.set(scheduler="threads"):
        step = dask_steps(m, chunk, check=False)[name]
        gc.collect()
        before = resident_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        except OSError:
            return None
        step()
        return (resident_kib("VmHWM") - before) * 1024


def rounds_for(budget, seconds_per_round, least=3, most=15):
    return int(min(most, max(least, budget / max(seconds_per_round, 1e-9))))


# --- Dask -----------------------------------------------------------------------------------------

def dask_steps(m, chunk, check=True):
    """The three forward + backward steps on the same problem: numpy by hand, the engine on
    numpy, the engine on Dask arrays of ``chunk`` columns (threaded scheduler); gradients
    checked equal first (unless ``check`` is False: a process measuring one of them)."""
    import dask.array as da

    X, Y, W, b = seed_problem(m)
    X_lazy = da.from_array(X, chunks=(X.shape[0], chunk))
    Y_lazy = da.from_array(Y, chunks=(Y.shape[0], chunk))
    if check:
        expected = numpy_grads(W, b, X, Y)
        assert_same_gradients("engine on numpy", engine_grads(W, b, X, Y), expected, 1e-12)
        assert_same_gradients("engine on Dask", engine_grads(W, b, X_lazy, Y_lazy), expected,
                              1e-12)
    return {"numpy by hand": lambda: numpy_grads(W, b, X, Y),
            "engine, numpy": lambda: engine_grads(W, b, X, Y),
            "engine, Dask": lambda: engine_grads(W, b, X_lazy, Y_lazy)}


def dask_table(m=10**7, chunk=10**6, budget=30.0, resident=True):
    """The Dask rows: time and peak memory of forward + backward at ``m`` in ``chunk`` columns
    (``resident``: also each step's peak resident memory, in a fresh process)."""
    import dask

    with dask.config.set(scheduler="threads"):
        steps = dask_steps(m, chunk)
        start = time.perf_counter()
        for step in steps.values():
            step()
        rounds = rounds_for(budget, time.perf_counter() - start)
        times = interleaved(steps, rounds)
        peaks = {name: traced_peak(step) for name, step in steps.items()}
    rss = {name: resident_peak(name, m, chunk) if resident else None for name in steps}
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n## The seed network on Dask: forward + backward, m = {m:,} in chunks of {chunk:,}\n")
    print(f"Threaded scheduler, {dask.system.CPU_COUNT} threads; the engine's Dask step is one "
          f"lazy graph computed once by `J.backward()` (J and the four gradients). Gradients "
          f"equal the hand numpy's to 1e-12 relative. Median of {rounds} interleaved rounds; "
          f"peak memory above the level before the step (X and Y are already in memory): "
          f"tracemalloc's, and the whole process's resident memory (one step in a fresh "
          f"process).\n")
    print("| implementation | seconds | / numpy by hand | / engine on numpy | peak MiB "
          "| / numpy by hand | / engine on numpy | peak resident MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    hand, engine = "numpy by hand", "engine, numpy"
    for name in steps:
        resident_text = "n/a" if rss[name] is None else f"{rss[name] / 2**20:,.0f}"
        print(f"| {name} | {median[name]:.3f} | {median[name] / median[hand]:.2f}x | "
              f"{median[name] / median[engine]:.2f}x | {peaks[name] / 2**20:,.0f} | "
              f"{peaks[name] / peaks[hand]:.2f}x | {peaks[name] / peaks[engine]:.2f}x | "
              f"{resident_text} |", flush=True)
    return median, peaks


def cluster_rows(m=10**6, chunk=10**5, workers=2):
    """The same step on a ``LocalCluster`` of ``workers`` processes: seconds, and J's and each
    gradient's largest difference from the hand numpy's, relative to its largest entry."""
    try:
        import distributed
    except ImportError:
        print("\nLocalCluster: skipped: distributed is not installed (pip install "
              "'autograd_lite[dask]')")
        return None
    import dask.array as da

    X, Y, W, b = seed_problem(m)
    expected = numpy_grads(W, b, X, Y)
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        X_lazy = client.scatter(X, broadcast=True)  # the data on the workers, as on a cluster
        Y_lazy = client.scatter(Y, broadcast=True)
        X_lazy = da.from_delayed(X_lazy, X.shape, X.dtype).rechunk((X.shape[0], chunk))
        Y_lazy = da.from_delayed(Y_lazy, Y.shape, Y.dtype).rechunk((Y.shape[0], chunk))
        engine_grads(W, b, X_lazy, Y_lazy)  # warm: the workers import what the tasks need
        start = time.perf_counter()
        J, dW, db = engine_grads(W, b, X_lazy, Y_lazy)
        seconds = time.perf_counter() - start
    found = [("J", ag.to_numpy(J), expected[0])]
    found += [(f"dW[{l + 1}]", g, e) for l, (g, e) in enumerate(zip(dW, expected[1]))]
    found += [(f"db[{l + 1}]", g, e) for l, (g, e) in enumerate(zip(db, expected[2]))]
    differences = {name: float(np.max(np.abs(np.asarray(value) - wanted)))
                   / max(float(np.max(np.abs(wanted))), np.finfo(np.float64).tiny)
                   for name, value, wanted in found}
    print(f"\n## The same step on a LocalCluster of {workers} worker processes, m = {m:,} in chunks "
          f"of {chunk:,}\n")
    print(f"One step in {seconds:.2f} s. Largest difference from the hand numpy step, relative to "
          f"the largest entry (target: 1e-12):\n")
    print("| " + " | ".join(differences) + " |")
    print("| " + " | ".join("---:" for _ in differences) + " |")
    print("| " + " | ".join(f"{d:.1e}" for d in differences.values()) + " |", flush=True)
    return seconds, differences


# --- CuPy -----------------------------------------------------------------------------------------

def cupy_missing():
    """Why the GPU rows cannot run here (None when cupy imports and sees a device)."""
    try:
        import cupy
    except ImportError:
        return "cupy is not installed (pip install cupy-cuda12x on a machine with an NVIDIA GPU)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, no CUDA runtime: cupy's own error says which
        return f"cupy sees no GPU ({type(error).__name__}: {error})"
    return None if count else "cupy sees no GPU (0 devices)"


def hand_grads(xp, W, b, X, Y):
    """``numpy_grads`` written with the namespace ``xp`` (CuPy's): J, [dW[l]], [db[l]] by eqs
    33-34, 76 and 77-84, the floor a learner writes for a GPU."""
    m = X.shape[1]
    A = [X]
    for W_l, b_l in zip(W, b):
        Z = W_l @ A[-1] + b_l
        A.append(1.0 / (1.0 + xp.exp(-Z)))
    J = xp.sum(xp.maximum(Z, 0.0) - Z * Y + xp.log1p(xp.exp(-xp.abs(Z)))) / m
    dW, db = [None] * len(W), [None] * len(W)
    dZ = A[-1] - Y
    for l in range(len(W) - 1, -1, -1):
        dW[l] = (dZ @ A[l].T) / m
        db[l] = xp.sum(dZ, axis=1, keepdims=True) / m
        if l:
            dZ = (W[l].T @ dZ) * (A[l] * (1.0 - A[l]))
    return J, dW, db


def device_steps(xp, to_device, synchronize, m):
    """numpy by hand on the CPU, and by hand and the engine on the device of ``xp`` (each call
    waits for the device to finish); gradients checked equal first."""
    X, Y, W, b = seed_problem(m)
    Xd, Yd = to_device(X), to_device(Y)
    Wd, bd = [to_device(w) for w in W], [to_device(v) for v in b]
    expected = numpy_grads(W, b, X, Y)
    assert_same_gradients("by hand on the device", hand_grads(xp, Wd, bd, Xd, Yd), expected, 1e-9)
    assert_same_gradients("engine on the device", engine_grads(Wd, bd, Xd, Yd), expected, 1e-9)

    def waited(step):
        def run():
            step()
            synchronize()
        return run

    return {"numpy by hand (CPU)": lambda: numpy_grads(W, b, X, Y),
            "by hand (GPU)": waited(lambda: hand_grads(xp, Wd, bd, Xd, Yd)),
            "engine (GPU)": waited(lambda: engine_grads(Wd, bd, Xd, Yd))}


def cupy_table(sizes=(10**6, 10**7), budget=20.0):
    """The GPU rows, or one line saying why they are skipped (exit status 0 either way)."""
    reason = cupy_missing()
    if reason is not None:
        print(f"--backend cupy: skipped: {reason}")
        return None
    import cupy

    device = cupy.cuda.Device()
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()
    print(f"\n## The seed network on a GPU (CuPy, {name}): forward + backward\n")
    print("float64 on the device; each GPU step waits for the device to finish. Gradients equal "
          "the CPU numpy's to 1e-9 relative.\n")
    print("| m | numpy by hand (CPU) s | by hand (GPU) s | engine (GPU) s | engine / by hand (GPU) "
          "| engine (GPU) / numpy (CPU) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    found = {}
    for m in sizes:
        steps = device_steps(cupy, cupy.asarray, device.synchronize, m)
        start = time.perf_counter()
        for step in steps.values():
            step()
        times = interleaved(steps, rounds_for(budget, time.perf_counter() - start))
        median = {key: statistics.median(t) for key, t in times.items()}
        found[m] = median
        cpu, hand, engine = (median[k] for k in steps)
        print(f"| {m:,} | {cpu:.4f} | {hand:.4f} | {engine:.4f} | {engine / hand:.2f}x | "
              f"{engine / cpu:.2f}x |", flush=True)
    return found


def run(backend, quick=False, budget=None):
    """``python -m benchmarks.run --backend dask|cupy``."""
    if backend == "dask":
        try:
            import dask.array  # noqa: F401
        except ImportError:
            raise SystemExit("--backend dask needs dask: pip install 'autograd_lite[dask]'") from None
        m, chunk = (10**6, 10**5) if quick else (10**7, 10**6)
        dask_table(m, chunk, budget if budget is not None else (5.0 if quick else 60.0))
        cluster_rows(*((10**5, 10**4) if quick else (10**6, 10**5)))
    elif backend == "cupy":
        cupy_table((10**6,) if quick else (10**6, 10**7),
                   budget if budget is not None else (2.0 if quick else 20.0))
    return 0
