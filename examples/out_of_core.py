"""The seed's 3-4-1 network trained on more samples than fit in memory: out of core, with Dask.

Run:  python examples/out_of_core.py                                   # m = 10^7, threads
      python examples/out_of_core.py --m 100000000 --steps 5           # m = 10^8: 3.2 GB of data
      python examples/out_of_core.py --data /big/disk/seed             # the columns on disk
      python examples/out_of_core.py --scheduler processes
      python examples/out_of_core.py --scheduler tcp://10.0.0.5:8786   # a dask.distributed cluster

Samples are columns (eq 25), so a data set split into chunks of columns is a data-parallel
batch. X (3 x m) and Y (1 x m) are Dask arrays of ``--chunk`` columns each: drawn chunk by chunk
from ``--seed`` (each chunk from its own generator, so a chunk is the same on any worker, in any
run), or, with ``--data DIR``, memory-mapped ``.npy`` files written chunk by chunk once and read
chunk by chunk at every step. The training loop is the README's ten lines and SGD (eqs 74-75):
the forward pass (eqs 26-29), the log-loss (eqs 1 and 76) and ``J.backward()`` build one lazy
graph, and backward runs it once (one ``dask.compute`` per step): each chunk goes forward and
back on its own, the sums over the samples (eqs 79-80, 83-84: dW = dZ A^T, db = sum of dZ) are
Dask's tree reductions over the chunks, and only W, b, their gradients and J come back: a few
dozen numbers. Memory holds a few chunks per worker thread, never the data set (numpy would
need about 20 GB at m = 10^8; docs/backends.md has the measured peak).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import autograd_lite as ag
from autograd_lite.cli import UsageError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from command_line import Parser, number, parse, whole  # noqa: E402

# The labels come from a fixed teacher, Y = 1 where w.x + 0.5 + noise > 0: learnable, not
# perfectly (the noise), so J falls towards a floor above 0.
TEACHER_W, TEACHER_B, NOISE = np.array([[2.0, -1.5, 1.0]]), 0.5, 0.5
FEATURES = 3
MAX_M = 10**12  # a typo such as an extra zero is refused, not started


def features(block_id, block_info, seed):
    """One chunk of X: 3 x (its columns) standard normal numbers from the chunk's own generator."""
    columns = block_info[None]["chunk-shape"][1]
    return np.random.default_rng((seed, block_id[1], 0)).standard_normal((FEATURES, columns))


def labels(x, block_id, seed):
    """The chunk of Y for the chunk ``x`` of X: the teacher's 0/1 label of each column."""
    noise = np.random.default_rng((seed, block_id[1], 1)).standard_normal((1, x.shape[1]))
    return ((TEACHER_W @ x + TEACHER_B + NOISE * noise) > 0).astype(np.float64)


def generated(m, chunk, seed):
    """X (3, m) and Y (1, m) as Dask arrays drawn chunk by chunk: nothing is held in memory."""
    import dask.array as da

    columns = (chunk,) * (m // chunk) + ((m % chunk,) if m % chunk else ())
    X = da.map_blocks(features, chunks=((FEATURES,), columns), dtype=np.float64,
                      meta=np.empty((0, 0)), seed=seed, name=f"X-seed-{seed}-{chunk}")
    Y = X.map_blocks(labels, chunks=((1,), columns), dtype=np.float64, seed=seed,
                     name=f"Y-seed-{seed}-{chunk}")
    return X, Y


class Columns:
    """An ``.npy`` file of columns, read through a memory map one chunk at a time, on whichever
    worker needs the chunk (the file's path is all a worker is sent). Never a pickle."""

    def __init__(self, path):
        self.path = str(path)
        array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, index):
        return np.array(np.load(self.path, mmap_mode="r", allow_pickle=False)[index])


def on_disk(directory, X, Y):
    """X and Y stored in ``directory`` as X.npy and Y.npy, written chunk by chunk (each file
    whole or not at all: written under a temporary name, then renamed) unless already there
    with the same shape; returned as Dask arrays that read them chunk by chunk."""
    import dask.array as da

    directory.mkdir(parents=True, exist_ok=True)
    arrays = []
    for name, array in (("X", X), ("Y", Y)):
        path = directory / f"{name}.npy"
        if not (path.exists() and Columns(path).shape == array.shape):
            print(f"writing {path} ({_size(array.nbytes)}), chunk by chunk", flush=True)
            partial = directory / f".{name}.npy.partial"
            target = np.lib.format.open_memmap(partial, mode="w+", dtype=array.dtype,
                                               shape=array.shape)
            da.store(array, target, lock=False, scheduler="threads")
            target.flush()
            del target
            os.replace(partial, path)
        arrays.append(da.from_array(Columns(path), chunks=array.chunks, name=f"{name}-{path}"))
    return arrays


def seed_network(seed):
    """W[l] n[l] x n[l-1], b[l] n[l] x 1 (eqs 35-36) of the 3-4-1 network, W scaled by
    1/sqrt(n[l-1]) so the sigmoids start unsaturated and J falls within a few steps."""
    rng = np.random.default_rng(seed)
    return [ag.Tensor(rng.standard_normal((4, 3)) / np.sqrt(3), requires_grad=True, name="W[1]"),
            ag.Tensor(np.zeros((4, 1)), requires_grad=True, name="b[1]"),
            ag.Tensor(rng.standard_normal((1, 4)) / 2, requires_grad=True, name="W[2]"),
            ag.Tensor(np.zeros((1, 1)), requires_grad=True, name="b[2]")]


def scheduler_setting(text):
    """An argparse ``type``: ``threads``, ``processes`` or a cluster's address."""
    if text in ("threads", "processes"):
        return text
    if re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+|[\w.-]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"must be threads, processes or a scheduler's address such "
                                     f"as tcp://10.0.0.5:8786, got {text!r}")


def parse_arguments(argv):
    """The options, checked (a bad one: one line on stderr, exit status 2, before any work)."""
    parser = Parser(prog="out_of_core.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=whole(1, MAX_M), default=10**7, help="samples (columns)")
    parser.add_argument("--chunk", type=whole(1), default=10**6, help="columns per chunk")
    parser.add_argument("--steps", type=whole(1), default=10, help="SGD steps (eqs 74-75)")
    parser.add_argument("--alpha", type=number(above=0), default=3.0, help="learning rate")
    parser.add_argument("--seed", type=whole(0), default=0)
    parser.add_argument("--scheduler", type=scheduler_setting, default="threads",
                        help="threads, processes, or a dask.distributed scheduler's address")
    parser.add_argument("--data", type=Path, default=None,
                        help="a directory to store X.npy and Y.npy in and read them from "
                             "(default: drawn chunk by chunk from --seed at every step)")

    def check(args):
        if args.chunk > args.m:
            raise UsageError(f"--chunk {args.chunk} is more than --m {args.m} columns")
        if args.m // args.chunk > 10**6:
            raise UsageError(f"--m {args.m} in chunks of {args.chunk} is "
                             f"{math.ceil(args.m / args.chunk):,} chunks; use at most a million "
                             f"(a larger --chunk)")
        try:
            import dask.array  # noqa: F401
            if args.scheduler not in ("threads", "processes"):
                import distributed  # noqa: F401
        except ImportError as error:
            raise UsageError(f"needs {error.name}: pip install 'autograd_lite[dask]'") from None
        if args.data is not None:
            if args.data.exists() and not args.data.is_dir():
                raise UsageError(f"--data {args.data} is not a directory")
            existing = args.data if args.data.exists() else _existing_parent(args.data)
            needed = (FEATURES + 1) * 8 * args.m
            free = shutil.disk_usage(existing).free
            if not (args.data / "X.npy").exists() and needed > free:
                raise UsageError(f"--data {args.data}: storing m = {args.m} samples needs "
                                 f"{_size(needed)}, the disk has {_size(free)} free")

    return parse(parser, argv, check)


def _size(bytes_):
    return f"{bytes_ / 1e9:.1f} GB" if bytes_ >= 1e9 else f"{bytes_ / 1e6:.1f} MB"


def _existing_parent(path):
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def main(argv=None):
    args = parse_arguments(argv)
    import dask
    from dask.diagnostics import ProgressBar

    client = None
    if args.scheduler == "threads":
        dask.config.set(scheduler="threads")
        progress = _progress_bar(ProgressBar)
    elif args.scheduler == "processes":  # one pool of worker processes for every step
        from concurrent.futures import ProcessPoolExecutor
        dask.config.set(scheduler="processes", pool=ProcessPoolExecutor(os.cpu_count()))
        progress = _progress_bar(ProgressBar)
    else:
        import distributed
        client = distributed.Client(args.scheduler)  # dask.compute runs on the cluster now
        print(f"cluster {args.scheduler}: {len(client.scheduler_info()['workers'])} workers; "
              f"progress at {client.dashboard_link}")
        progress = _no_bar

    X, Y = generated(args.m, args.chunk, args.seed)
    if args.data is not None:
        X, Y = on_disk(args.data, X, Y)
    X, Y = ag.Tensor(X, name="X"), ag.Tensor(Y, name="Y")
    W1, b1, W2, b2 = parameters = seed_network(args.seed)
    sgd = ag.optim.SGD(parameters, lr=args.alpha)
    print(f"m = {args.m:,} samples in {X.data.numblocks[1]:,} chunks of {args.chunk:,} columns "
          f"({_size((FEATURES + 1) * 8 * args.m)} of X and Y, "
          f"{'on disk in ' + str(args.data) if args.data else 'drawn chunk by chunk'}); "
          f"scheduler: {args.scheduler}")
    for step in range(args.steps):
        start = time.perf_counter()
        with progress():
            A1 = (W1 @ X + b1).sigmoid()                 # eqs 26-27
            A2 = (W2 @ A1 + b2).sigmoid()                # eqs 28-29
            J = ag.binary_cross_entropy(A2, Y)           # eqs 1 and 76
            sgd.zero_grad()
            J.backward()                                 # one compute: J, dW, db (eqs 77-84)
            sgd.step()                                   # eqs 74-75, on W and b in memory
        print(f"step {step:3d}   J = {float(ag.to_numpy(J)):.6f}   "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    if client is not None:
        client.close()
    return 0


def _progress_bar(ProgressBar):
    """Dask's progress bar for a step that takes longer than half a second."""
    return lambda: ProgressBar(minimum=0.5)


class _no_bar:
    """No local progress bar: a cluster's progress is on its dashboard."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
