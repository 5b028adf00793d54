"""A differential fuzzer of ag.compile: random training steps built from the ops and layers
(masks from comparisons, fancy and argument indices, clip bounds from arguments, Dropout,
BatchNorm, LayerNorm, Embedding, softmax, reductions), in float32 and float64, with arguments
of every kind (ndarrays, Tensors, boolean masks, integer indices, static numbers and tuples).
Each step is called many times on fresh data in two identical worlds, compiled and eagerly,
with changes between calls (SGD updates in place, train()/eval(), a parameter or a buffer
replaced, a static argument changed, another batch size); every call must give the eager
engine's J, gradients, running statistics and generator states bit for bit, or be refused
(GraphChangedError) before any gradient is touched.

A fixed budget of seeds runs with the suite; ``AG_FUZZ_EXAMPLES=n`` runs n more programs (seeds
after the fixed ones) and prints how many programs and calls ran.
"""
import os

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import nn
from autograd_lite.compile import GraphChangedError

CI_PROGRAMS = 60
LONG_RUN = int(os.environ.get("AG_FUZZ_EXAMPLES", "0"))

ACTIVATIONS = {
    "sigmoid": lambda H: H.sigmoid(), "tanh": lambda H: H.tanh(), "relu": lambda H: H.relu(),
    "elu": lambda H: H.elu(), "gelu": lambda H: H.gelu(), "gelu_tanh": lambda H: H.gelu("tanh"),
    "softplus": lambda H: H.softplus(), "abs": lambda H: H.abs(), "square": lambda H: H.square() * 0.5,
    "sin": lambda H: H.sin(), "cos": lambda H: H.cos(), "exp": lambda H: (H * 0.2).exp(),
    "log": lambda H: (H * H + 1.0).log(), "sqrt": lambda H: (H * H + 0.5).sqrt(),
    "pow": lambda H: (H * H + 1.0) ** 0.75, "neg": lambda H: -H, "div": lambda H: H / (H.abs() + 1.0),
}
LAYERS = ["linear", "activation", "leaky_relu", "compare_mask", "mask_argument", "where", "clip",
          "clip_arguments", "maximum", "minimum", "rows_argument", "columns_fortran",
          "columns_argument", "dropout", "batchnorm", "layernorm", "softmax", "center",
          "embedding", "argmax_mask", "concatenate", "stack", "transpose", "reshape", "extremum",
          "logsumexp", "numpy_test"]
HEADS = ["bce", "mse", "softmax_cross_entropy", "huber", "mean_square"]


class Net(nn.Module):
    """The layers of ``spec`` on H (n x m), then the head's loss; modules and parameters made
    from ``spec["seed"]`` so two Nets of one spec are identical."""

    def __init__(self, spec):
        rng = np.random.default_rng(spec["seed"])
        n, dtype = spec["n"], spec["dtype"]
        self.spec = spec
        self.blocks = []
        for kind in spec["layers"]:
            if kind == "linear":
                block = nn.Linear(n, n, rng=rng)
            elif kind == "dropout":
                block = nn.Dropout(float(rng.choice([0.2, 0.5])), rng=int(rng.integers(1000)))
            elif kind == "batchnorm":
                block = nn.BatchNorm(n, momentum=float(rng.choice([0.1, 0.5])))
            elif kind == "layernorm":
                block = nn.LayerNorm(n)
            elif kind == "embedding":
                block = nn.Embedding(spec["vocab"], n, rng=rng)
            elif kind == "argmax_mask":  # a captured constant (an array made inside is refused)
                block = ag.Tensor(np.arange(n).reshape(n, 1))
            else:
                block = None
            if isinstance(block, nn.Module):
                for p in block.parameters():
                    p.data = p.data.astype(dtype)
            self.blocks.append(block)
        self.head = nn.Linear(n, 1, rng=rng)
        for p in self.head.parameters():
            p.data = p.data.astype(dtype)

    def forward(self, X, Y, extra):
        H = X
        for kind, block in zip(self.spec["layers"], self.blocks):
            H = _layer(kind, block, H, extra)
        return _head(self.spec["head"], self.head, H, Y, extra)


def _layer(kind, block, H, extra):
    n, m = H.shape
    if isinstance(block, nn.Module) and kind != "embedding":
        return block(H)
    if kind == "activation":
        return ACTIVATIONS[extra["activation"]](H)
    if kind == "leaky_relu":
        return H.leaky_relu(extra["slope"])                  # a static float argument
    if kind == "compare_mask":
        if H.dtype == np.float64:                            # a mask from a comparison
            return H * (H > 0.1) + H * 0.05
        return ag.where(H > 0.1, H, H * 0.05)
    if kind == "mask_argument":
        return H * extra["mask"] + (~extra["mask"]) * 0.5      # a boolean array argument
    if kind == "where":                                      # Huber's condition, from the data
        delta = extra["delta"]
        return ag.where(H.abs() < delta, 0.5 * H * H, delta * (H.abs() - 0.5 * delta))
    if kind == "clip":
        return H.clip(-0.7, 0.9)
    if kind == "clip_arguments":
        return H.clip(extra["low"], extra["high"])
    if kind == "maximum":
        return ag.maximum(H, H[::-1] * 0.5)
    if kind == "minimum":
        return ag.minimum(H, 0.3) + ag.minimum(H, H[::-1])
    if kind == "rows_argument":
        return H[extra["rows"]]                              # an integer index argument
    if kind == "columns_fortran":
        return H[:, [0, 0] + list(range(1, m - 1))] * 1.5    # an F-ordered result
    if kind == "columns_argument":
        return H[:, extra["columns"]]
    if kind == "softmax":
        return H.softmax(axis=0) if extra["log"] else H.log_softmax(axis=0)
    if kind == "center":
        return (H - H.mean(axis=1, keepdims=True)) / (H.var(axis=1, keepdims=True) + 1.0).sqrt()
    if kind == "embedding":
        return H + block(extra["tokens"])
    if kind == "argmax_mask":
        winners = H.argmax(axis=0, keepdims=True)
        return ag.where(block == winners, H, H * 0.5)            # block: the row numbers
    if kind == "concatenate":
        return ag.concatenate([H[1:], H[:1] * 2.0], axis=0)
    if kind == "stack":
        return ag.stack([H, H * 0.5], axis=0).sum(axis=0)
    if kind == "transpose":
        return (H.T * 0.5).exp().T.sum(axis=1, keepdims=True) * 0.1 + H
    if kind == "reshape":
        return H.reshape(extra["shape"]).T.reshape(n, m) * 0.5 + H   # a static tuple argument
    if kind == "extremum":
        return H - H.max(axis=0, keepdims=True) + H.min(axis=1, keepdims=True)
    if kind == "logsumexp":
        return H - H.logsumexp(axis=0, keepdims=True)
    if kind == "numpy_test":
        return ag.where(np.isfinite(H), H, 0.0) + ag.where(np.greater(H, 0.0), H, H * 0.1)
    raise AssertionError(kind)


def _head(kind, linear, H, Y, extra):
    if kind == "bce":
        return ag.binary_cross_entropy_with_logits(linear(H), Y)
    if kind == "mse":
        return ag.mean_squared_error(linear(H), Y)
    if kind == "softmax_cross_entropy":
        return ag.softmax_cross_entropy(H, extra["labels"])
    if kind == "huber":
        r = linear(H) - Y
        return ag.where(r.abs() < 1.0, 0.5 * r * r, r.abs() - 0.5).mean()
    return (H * H).mean()


# --- programs and calls ---------------------------------------------------------------------------

def random_spec(seed):
    rng = np.random.default_rng(seed)
    layers = [str(kind) for kind in rng.choice(LAYERS, size=int(rng.integers(1, 6)))]
    layers.insert(0, "linear")  # X meets W first
    return {"seed": seed, "dtype": np.float32 if rng.random() < 0.4 else np.float64,
            "n": int(rng.integers(2, 5)), "m": int(rng.choice([3, 4, 5, 6, 9, 12, 17])), "vocab": 5,
            "layers": layers, "head": str(rng.choice(HEADS)),
            "activation": str(rng.choice(sorted(ACTIVATIONS))),
            "tensors": bool(rng.random() < 0.5), "x_requires_grad": bool(rng.random() < 0.25),
            "calls": int(rng.integers(4, 9))}


def random_arguments(spec, rng, m):
    """(X, Y, extra) for one call: fresh data of the step's kinds."""
    n, dtype = spec["n"], spec["dtype"]
    X = rng.standard_normal((n, m)).astype(dtype)
    head = spec["head"]
    Y = ((rng.random((1, m)) < 0.5) * 1.0 if head == "bce" else rng.standard_normal((1, m))).astype(dtype)
    low = -rng.random((n, 1)) - 0.2
    extra = {
        "activation": spec["activation"], "slope": float(rng.choice([0.01, 0.2])),
        "mask": rng.random((n, m)) < 0.6, "delta": float(rng.choice([0.5, 1.0])),
        "low": low.astype(dtype), "high": (low + 0.5 + rng.random((n, 1))).astype(dtype),
        "rows": rng.integers(0, n, n), "columns": rng.integers(0, m, m),
        "tokens": rng.integers(0, spec["vocab"], m), "labels": rng.integers(0, n, m),
        "log": bool(rng.random() < 0.5), "shape": (m, n),
    }
    return X, Y, extra


def _as_argument(value, spec, world):
    """An array argument as the world passes it: the array, or a Tensor of its dtype. A
    float32 world passes Tensors: eagerly, ``as_tensor`` (Linear, the losses) makes a float32
    ndarray a float64 Tensor while an operand keeps float32, and a compiled step keeps an
    argument's dtype (the operand's rule)."""
    if isinstance(value, np.ndarray) and (spec["tensors"] or spec["dtype"] == np.float32):
        return ag.Tensor(value, dtype=value.dtype)
    return value


class World:
    def __init__(self, spec):
        self.spec = spec
        self.net = Net(spec)
        keys = ("activation", "slope", "mask", "delta", "low", "high", "rows", "columns",
                "tokens", "labels", "log", "shape")

        def loss(X, Y, *values):
            return self.net(X, Y, dict(zip(keys, values)))
        self.loss, self.keys = loss, keys

    def arguments(self, X, Y, extra):
        if self.spec["x_requires_grad"]:  # an argument that gets a gradient of its own
            self.X = ag.Tensor(X, dtype=X.dtype, requires_grad=True)
        else:
            self.X = _as_argument(X, self.spec, self)
        return ((self.X, _as_argument(Y, self.spec, self))
                + tuple(_as_argument(extra[key], self.spec, self) for key in self.keys))

    def state(self):
        arrays = [array for _, array in self.net.named_buffers()]
        generators = [block.rng.bit_generator.state["state"]["state"]
                      for block in self.net.blocks if isinstance(block, nn.Dropout)]
        return arrays, generators


def change(worlds, rng, call):
    """One random change of both worlds between calls (the same in each)."""
    what = rng.choice(["none", "none", "sgd", "sgd", "mode", "replace_parameter", "replace_buffer"])
    for world in worlds:
        net = world.net
        if what == "sgd":
            with ag.no_grad():
                for p in net.parameters():
                    if p.grad is not None:
                        p.data -= (0.1 * p.grad).astype(p.dtype)
        elif what == "mode":
            net.train(not net.training)
        elif what == "replace_parameter":
            old = net.head.W
            net.head.W = nn.Parameter(old.data * 0.9 + 0.01, name="W")
            net.head.W.data = net.head.W.data.astype(old.dtype)
        elif what == "replace_buffer":
            for block in net.blocks:
                if isinstance(block, nn.BatchNorm):
                    block.running_mean = block.running_mean * 0.5 + 0.1
        for p in net.parameters():
            p.grad = None
    return what


def run_program(seed):
    """One random program called ``spec["calls"]`` times; returns how many calls it made."""
    spec = random_spec(seed)
    eager, compiled = World(spec), World(spec)
    step = ag.compile(compiled.loss)
    rng = np.random.default_rng(10_000 + seed)
    calls = 0
    for call in range(spec["calls"]):
        what = change((eager, compiled), rng, call) if call else "none"
        m = spec["m"] if rng.random() < 0.85 else spec["m"] + 1      # another batch size
        X, Y, extra = random_arguments(spec, rng, m)
        try:
            with np.errstate(all="ignore"):
                J_e = eager.loss(*eager.arguments(X, Y, extra))
                J_e.backward()
        except (ValueError, IndexError, ag.ShapeError) as error:     # not a valid step eagerly
            with pytest.raises(type(error)):
                step(*compiled.arguments(X, Y, extra))
            return calls
        try:
            with np.errstate(all="ignore"):
                J_c = step(*compiled.arguments(X, Y, extra))
        except GraphChangedError as error:  # every step here can be compiled: never refused
            raise AssertionError(f"program {seed} {spec}, call {call} after {what}: refused") from error
        calls += 1
        where = f"program {seed} {spec}, call {call} after {what}"
        assert J_c.dtype == J_e.dtype, where
        np.testing.assert_array_equal(J_c.data, J_e.data, err_msg=where)
        for (name, p_e), p_c in zip(eager.net.named_parameters(), compiled.net.parameters()):
            assert (p_e.grad is None) == (p_c.grad is None), f"{where}: {name}"
            if p_e.grad is not None:
                assert p_c.grad.dtype == p_e.grad.dtype, f"{where}: {name}"
                np.testing.assert_array_equal(p_c.grad, p_e.grad, err_msg=f"{where}: {name}")
        if spec["x_requires_grad"]:
            np.testing.assert_array_equal(compiled.X.grad, eager.X.grad, err_msg=f"{where}: dJ/dX")
        (arrays_e, generators_e), (arrays_c, generators_c) = eager.state(), compiled.state()
        for a_e, a_c in zip(arrays_e, arrays_c):
            np.testing.assert_array_equal(a_c, a_e, err_msg=f"{where}: a buffer")
        assert generators_c == generators_e, f"{where}: a generator"
    return calls


@pytest.mark.parametrize("seed", range(CI_PROGRAMS))
def test_a_random_step_replays_as_the_eager_engine(seed):
    run_program(seed)


@pytest.mark.skipif(not LONG_RUN, reason="the long run: AG_FUZZ_EXAMPLES=n")
def test_the_long_run(capsys):
    programs = calls = 0
    failures = []
    for seed in range(CI_PROGRAMS, CI_PROGRAMS + LONG_RUN):
        try:
            calls += run_program(seed)
        except AssertionError as error:
            failures.append(next((line for line in str(error).splitlines() if "program " in line),
                                 str(error))[:300])
        programs += 1
    with capsys.disabled():
        print(f"\nag.compile fuzzer: {programs} programs, {calls} calls compiled and eagerly, "
              f"bit for bit; {len(failures)} programs failed")
    assert not failures, "\n".join(failures[:10])
