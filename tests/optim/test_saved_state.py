"""Saving and resuming an optimizer: state_dict / load_state_dict and save / load.

The key property: the seed's 3-4-1 network (eqs 21-29, sigmoid eq 7) trained with the fused
log-loss (eqs 1, 76) for k steps, saved with its optimizer, loaded into a fresh model and
optimizer and trained n more steps, ends with the same parameters, bit for bit, as k + n steps
without a stop (eqs 74-75 for SGD). Then: every refused load names what is wrong and leaves the
optimizer as it was, the file is written whole or not at all, and it holds no pickled object.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_lite as ag
from autograd_lite import nn, optim
from autograd_lite.errors import ShapeError


def seed_network(seed, sizes=(3, 4, 1)):
    """The seed's network with logits out: sigmoid hidden layer, identity output, so the loss
    is the fused, exact log-loss of s(Z[2]) (eqs 1, 7, 76)."""
    return nn.MLP(list(sizes), ["sigmoid"] * (len(sizes) - 2) + ["identity"], init="small",
                  rng=np.random.default_rng(seed))


def batch(step, n_in=3, m=8):
    """Step ``step``'s mini-batch: the same columns whichever run asks for it (eq 25)."""
    generator = np.random.default_rng(1000 + step)
    X = generator.standard_normal((n_in, m))
    return X, (X.sum(axis=0) > 0).astype(float)[None, :]


def train(model, optimizer, start, steps):
    for step in range(start, start + steps):
        X, Y = batch(step, n_in=model.sizes[0])
        J = ag.binary_cross_entropy_with_logits(model(X), Y)
        optimizer.zero_grad()
        J.backward()
        optimizer.step()


OPTIMIZERS = {
    "adam": lambda params, lr=0.05: optim.Adam(params, lr=lr),
    "adam_decay": lambda params, lr=0.05: optim.Adam(params, lr=lr, betas=(0.8, 0.99), eps=1e-6,
                                                     weight_decay=0.01),
    "sgd_momentum": lambda params, lr=0.5: optim.SGD(params, lr=lr, momentum=0.9),
    "sgd_momentum_decay": lambda params, lr=0.5: optim.SGD(params, lr=lr, momentum=0.8,
                                                           weight_decay=0.01),
    "adamw": lambda params, lr=0.05: optim.AdamW(params, lr=lr, weight_decay=0.05),
    "rmsprop": lambda params, lr=0.01: optim.RMSprop(params, lr=lr),
    "rmsprop_all": lambda params, lr=0.01: optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-6,
                                                         weight_decay=0.01, momentum=0.5,
                                                         centered=True),
}


def assert_same_state(a, b, where="state"):
    """Two state_dicts equal leaf by leaf: arrays bit for bit, numbers and strings exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), where
    else:
        assert type(a) is type(b) and a == b, where


# --- exact resumption -------------------------------------------------------------------------

@pytest.mark.parametrize("through", ["file", "state_dict"])
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_resumed_training_equals_an_uninterrupted_run_bit_for_bit(kind, through, tmp_path):
    k, n = 4, 5
    make = OPTIMIZERS[kind]
    straight = seed_network(0)
    straight_optimizer = make(straight)
    train(straight, straight_optimizer, 0, k + n)

    first = seed_network(0)
    first_optimizer = make(first)
    train(first, first_optimizer, 0, k)
    # A fresh model and optimizer that differ in every respect the load must restore: other
    # initial weights, another learning rate, no buffers yet.
    second = seed_network(7)
    second_optimizer = make(second, lr=0.001)
    if through == "file":
        first.save(tmp_path / "model.npz")
        first_optimizer.save(tmp_path / "optimizer.npz")
        second.load(tmp_path / "model.npz")
        assert second_optimizer.load(tmp_path / "optimizer.npz") is second_optimizer
    else:
        second.load_state_dict(first.state_dict())
        second_optimizer.load_state_dict(first_optimizer.state_dict())
    train(second, second_optimizer, k, n)

    for (name, a), (_, b) in zip(straight.named_parameters(), second.named_parameters()):
        assert np.array_equal(a.data, b.data), name
    assert second_optimizer.steps == k + n
    assert_same_state(second_optimizer.state_dict(), straight_optimizer.state_dict())


def test_without_the_optimizer_state_the_resumed_run_differs():
    """The control for the test above: loading the model alone is not enough (Adam restarts
    its bias correction and moments), so the equality above is the optimizer state's doing."""
    straight = seed_network(0)
    train(straight, optim.Adam(straight, lr=0.05), 0, 6)
    first = seed_network(0)
    train(first, optim.Adam(first, lr=0.05), 0, 3)
    second = seed_network(7).load_state_dict(first.state_dict())
    train(second, optim.Adam(second, lr=0.05), 3, 3)
    assert not np.array_equal(straight.layers[0].W.data, second.layers[0].W.data)


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_state_before_any_step_round_trips_and_resumes(kind, tmp_path):
    make = OPTIMIZERS[kind]
    model = seed_network(0)
    source = make(model)
    state = source.state_dict()
    assert state["steps"] == 0
    for entry in state["parameters"].values():   # buffers are created lazily, at the first step
        assert all(entry[key] is None for key in ("m", "v", "velocity") if key in entry)
    source.save(tmp_path / "optimizer.npz")
    from_file = make(model, lr=0.123).load(tmp_path / "optimizer.npz")
    from_dict = make(model, lr=0.123).load_state_dict(state)
    assert_same_state(from_file.state_dict(), state)
    assert_same_state(from_dict.state_dict(), state)
    # ... and the first step from the loaded optimizer is the first step of the original
    reference = seed_network(0)
    train(reference, make(reference), 0, 2)
    resumed = seed_network(0)
    optimizer = make(resumed, lr=0.123).load(tmp_path / "optimizer.npz")
    train(resumed, optimizer, 0, 2)
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data)


def test_state_dict_is_plain_data_keyed_by_position_and_name():
    model = seed_network(0)
    optimizer = optim.Adam(model, lr=0.05, betas=(0.8, 0.99))
    train(model, optimizer, 0, 2)
    state = optimizer.state_dict()
    assert state["optimizer"] == "Adam" and state["format"] == 1 and state["steps"] == 2
    assert state["hyperparameters"] == {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8,
                                        "weight_decay": 0.0}
    assert list(state["parameters"]) == [0, 1, 2, 3]
    assert [(e["name"], e["tensor_name"], e["shape"]) for e in state["parameters"].values()] == [
        ("layers.0.W", "W[1]", (4, 3)), ("layers.0.b", "b[1]", (4, 1)),
        ("layers.1.W", "W[2]", (1, 4)), ("layers.1.b", "b[2]", (1, 1))]

    def leaves(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, tuple):
            yield from value
        else:
            yield value
    for leaf in leaves(state):
        assert type(leaf) in (int, float, str, np.ndarray), type(leaf)   # never a Tensor
    assert state["parameters"][0]["t"] == 2
    # the arrays are copies: editing them does not reach into the optimizer
    state["parameters"][0]["m"][...] = 99.0
    assert not np.any(optimizer.state[0]["m"] == 99.0)


def test_names_are_compared_only_when_both_sides_know_them():
    model = seed_network(0)
    by_list = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    by_module = optim.SGD(model, lr=0.1, momentum=0.9)
    assert by_list.param_names == [None] * 4
    assert by_module.param_names == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    train(model, by_list, 0, 1)
    by_module.load_state_dict(by_list.state_dict())     # dotted names unknown on one side
    assert np.array_equal(by_module.state[3]["velocity"], by_list.state[3]["velocity"])


@settings(max_examples=20, deadline=None)
@given(layers=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       kind=st.sampled_from(list(OPTIMIZERS)), steps=st.integers(0, 3))
def test_save_load_round_trips_any_network(layers, kind, steps, tmp_path_factory):
    """n[0] and the hidden widths vary (eqs 35-36); one logit out for the log-loss."""
    model = seed_network(0, layers + [1])
    source = OPTIMIZERS[kind](model)
    train(model, source, 0, steps)
    path = tmp_path_factory.mktemp("state") / "optimizer.npz"
    source.save(path)
    target = OPTIMIZERS[kind](model, lr=0.3).load(path)
    assert_same_state(target.state_dict(), source.state_dict())


# --- refusals: message, and the optimizer unchanged ---------------------------------------------

def trained(kind="adam", sizes=(3, 4, 1), steps=2, lr=None, seed=0):
    model = seed_network(seed, sizes)
    optimizer = OPTIMIZERS[kind](model) if lr is None else OPTIMIZERS[kind](model, lr=lr)
    train(model, optimizer, 0, steps)
    return optimizer


def spoil(path, value):
    """Return a function that sets state[path...] = value (or deletes it for value DELETE)."""
    def edit(state):
        *parents, last = path
        for key in parents:
            state = state[key]
        if value is DELETE:
            del state[last]
        else:
            state[last] = value(state[last]) if callable(value) else value
    return edit


DELETE = object()

REFUSALS = [
    ("another kind", "sgd_momentum", None,
     ValueError, r"the state was saved by 'SGD', not 'Adam'"),
    ("another format", "adam", spoil(["format"], 2),
     ValueError, r"the state has format 2; this version reads format 1"),
    ("a missing hyperparameter", "adam", spoil(["hyperparameters", "eps"], DELETE),
     ValueError, r"hyperparameters does not have the expected keys \(missing eps\)"),
    ("an unknown key", "adam", spoil(["parameters", 1, "extra"], np.zeros(2)),
     ValueError, r"parameter 1 \(layers\.0\.b, b\[1\]\) does not have the expected keys "
                 r"\(unexpected extra\)"),
    ("a bad hyperparameter", "adam", spoil(["hyperparameters", "beta2"], 1.5),
     ValueError, r"beta2 must lie in \[0, 1\), got 1\.5"),
    ("a bad learning rate", "adam", spoil(["hyperparameters", "lr"], -1.0),
     ValueError, r"the learning rate must be a finite number > 0, got -1\.0"),
    # the buffer at fault is on the last parameter, so a load that assigned as it went
    # would already have changed the first three
    ("a buffer of another shape", "adam", spoil(["parameters", 3, "v"], lambda v: np.zeros((2, 1))),
     ShapeError, r"parameter 3 \(layers\.1\.b, b\[2\]\) has shape \(1, 1\) but its saved v has "
                 r"shape \(2, 1\)"),
    ("a buffer that is not numbers", "adam", spoil(["parameters", 3, "m"], np.array([["x"]])),
     ValueError, r"parameter 3 \(layers\.1\.b, b\[2\]\)'s saved m holds dtype <U1, not numbers"),
    ("a step count with no moments", "adam", spoil(["parameters", 3, "m"], None),
     ValueError, r"parameter 3 \(layers\.1\.b, b\[2\]\) has t = 2 but no saved m"),
    ("moments with no step", "adam", spoil(["parameters", 3, "t"], 0),
     ValueError, r"has t = 0 \(no step yet\) but saved moments"),
    ("a fractional step count", "adam", spoil(["parameters", 3, "t"], 2.0),
     ValueError, r"parameter 3 \(layers\.1\.b, b\[2\]\)'s saved t must be a whole number >= 0, "
                 r"got 2\.0"),
    ("a negative step count", "adam", spoil(["steps"], -1),
     ValueError, r"steps must be a whole number >= 0, got -1"),
    ("a NaN hyperparameter", "adam", spoil(["hyperparameters", "eps"], float("nan")),
     ValueError, r"eps must be finite, got nan"),
    ("an infinite weight decay", "adam", spoil(["hyperparameters", "weight_decay"], float("inf")),
     ValueError, r"weight_decay must be finite, got inf"),
    ("a negative second moment", "adam", spoil(["parameters", 2, "v"], lambda v: v - 1.0),
     ValueError, r"parameter 2 \(layers\.1\.W, W\[2\]\)'s saved v holds 4 negative entries "
                 r"\(a mean of squared gradients is >= 0\), e\.g\. -0\.99\d*"),
    ("a NaN first moment", "adam", spoil(["parameters", 3, "m"], lambda m: m * np.nan),
     ValueError, r"parameter 3 \(layers\.1\.b, b\[2\]\)'s saved m holds 1 nan and 0 inf entries"),
    ("an AdamW state", "adamw", None,
     ValueError, r"the state was saved by 'AdamW', not 'Adam'"),
    ("parameters in another order", "adam",
     lambda state: state["parameters"].update({0: state["parameters"][2], 2: state["parameters"][0]}),
     ValueError, r"parameter 0 \(layers\.0\.W, W\[1\]\) is 'layers\.0\.W' here but 'layers\.1\.W' "
                 r"in the state \(another model, or parameters in another order\)"),
    ("positions that are not 0..n-1", "adam",
     lambda state: state["parameters"].update({7: state["parameters"].pop(3)}),
     ValueError, r"'parameters' must be keyed by position 0\.\.3, got keys \[0, 1, 2, 7\]"),
]


@pytest.mark.parametrize("label, kind, edit, error, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_state_names_the_fault_and_changes_nothing(label, kind, edit, error, message):
    target = trained("adam", steps=3, lr=0.01, seed=5)
    before = target.state_dict()
    state = trained(kind, steps=2).state_dict()
    if edit is not None:
        edit(state)
    with pytest.raises(error, match=message + r"; the optimizer is unchanged"):
        target.load_state_dict(state)
    assert_same_state(target.state_dict(), before)
    assert target.lr == 0.01


def test_a_state_for_another_number_of_parameters_is_refused():
    target = trained("adam")
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"Adam\.load_state_dict: the state holds 6 parameters "
                                         r"but this optimizer has 4; the optimizer is unchanged"):
        target.load_state_dict(trained("adam", sizes=(3, 4, 4, 1)).state_dict())
    assert_same_state(target.state_dict(), before)


@pytest.mark.parametrize("steps", [0, 2])
def test_a_state_for_a_wider_network_names_the_parameter_and_both_shapes(steps, tmp_path):
    """Caught from the recorded shape even before any step, when there are no buffers yet."""
    trained("sgd_momentum", sizes=(3, 5, 1), steps=steps).save(tmp_path / "wide.npz")
    target = trained("sgd_momentum", steps=1, lr=0.2)
    before = target.state_dict()
    with pytest.raises(ShapeError, match=r"SGD\.load '.*wide\.npz': parameter 0 \(layers\.0\.W, "
                                         r"W\[1\]\) has shape \(4, 3\) here but \(5, 3\) in the "
                                         r"state; the optimizer is unchanged"):
        target.load(tmp_path / "wide.npz")
    assert_same_state(target.state_dict(), before)


def test_an_sgd_velocity_of_another_shape_is_refused():
    target = trained("sgd_momentum", lr=0.2)
    before = target.state_dict()
    state = trained("sgd_momentum", steps=4).state_dict()
    state["parameters"][2]["velocity"] = np.zeros((4, 1))
    with pytest.raises(ShapeError, match=r"parameter 2 \(layers\.1\.W, W\[2\]\) has shape \(1, 4\) "
                                         r"but its saved velocity has shape \(4, 1\)"):
        target.load_state_dict(state)
    assert_same_state(target.state_dict(), before)


@pytest.mark.parametrize("kind, key, value, message", [
    ("sgd_momentum", "velocity", np.inf, r"saved velocity holds 0 nan and 4 inf entries"),
    ("sgd_momentum", "velocity", np.nan, r"saved velocity holds 4 nan and 0 inf entries"),
    ("rmsprop_all", "square_avg", -1.0, r"saved square_avg holds 4 negative entries"),
    ("rmsprop_all", "momentum_buffer", np.nan, r"saved momentum_buffer holds 4 nan"),
    ("rmsprop_all", "grad_avg", np.inf, r"saved grad_avg holds 0 nan and 4 inf"),
])
def test_non_finite_buffers_are_refused_where_loaded(kind, key, value, message, tmp_path):
    """A NaN velocity or moment, or a negative mean of squares, would make the next step NaN."""
    target = trained(kind, lr=0.2)
    before = target.state_dict()
    source = trained(kind, steps=4)
    state = source.state_dict()
    state["parameters"][2][key] = np.full((1, 4), value)
    with pytest.raises(ValueError, match=r"parameter 2 \(layers\.1\.W, W\[2\]\)'s " + message):
        target.load_state_dict(state)
    assert_same_state(target.state_dict(), before)
    source.load_state_dict(state) if False else None
    path = tmp_path / "spoiled.npz"
    flat = ag.io.flatten(state)
    np.savez(path, **flat)
    with pytest.raises(ValueError, match=message):
        target.load(path)
    assert_same_state(target.state_dict(), before)


# --- the file -----------------------------------------------------------------------------------

def test_the_file_holds_numbers_and_strings_only(tmp_path):
    path = tmp_path / "optimizer.npz"
    trained("adam").save(path)
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            assert archive[key].dtype.kind in "iufU", key    # no object arrays: nothing pickled
        assert str(archive["optimizer"]) == "Adam"
        assert archive["parameters.0.m"].shape == (4, 3)
        assert archive["parameters.0.shape"].tolist() == [4, 3]
    assert sorted(os.listdir(tmp_path)) == ["optimizer.npz"]   # no temporary file left behind


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "optimizer.npz"
    trained("adam", steps=1).save(path)
    old_bytes = path.read_bytes()

    def crash(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        trained("adam", steps=3).save(path)
    with pytest.raises(OSError, match="disk full"):
        trained("adam").save(tmp_path / "new.npz")
    assert path.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["optimizer.npz"]
    monkeypatch.undo()
    assert optim.Adam(seed_network(0)).load(path).steps == 1


def test_a_pickled_object_in_the_file_is_refused_without_running_it(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("the payload ran",))

    path = tmp_path / "evil.npz"
    state = {key: value for key, value in np.load(_saved(tmp_path), allow_pickle=False).items()}
    state["parameters.0.m"] = np.array([Payload()], dtype=object)
    np.savez(path, **state)
    target = trained("adam")
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"Adam\.load '.*evil\.npz': the file is not an optimizer "
                                         r"state written by Optimizer\.save .*allow_pickle=False"):
        target.load(path)
    assert "the payload ran" not in capsys.readouterr().out
    assert_same_state(target.state_dict(), before)


def _saved(tmp_path):
    path = tmp_path / "good.npz"
    trained("adam").save(path)
    return path


def test_loading_a_file_that_is_not_an_optimizer_state(tmp_path):
    optimizer = trained("adam")
    seed_network(0).save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"no 'format'/'optimizer' entry .*\['layers\.0\.W', "
                                         r".*it looks like a model's parameter file: load that "
                                         r"with model\.load"):
        optimizer.load(tmp_path / "model.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"the file is not an optimizer state"):
        optimizer.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match=r"Adam\.load '.*absent\.npz': no such file"):
        optimizer.load(tmp_path / "absent.npz")


def test_the_first_velocity_is_not_the_gradient_array_itself():
    """Editing .grad in place after a step (clipping it, say) must not edit the saved state."""
    W = nn.Parameter(np.ones((2, 1)), name="W[1]")
    optimizer = optim.SGD([W], lr=0.1, momentum=0.9)
    W.grad = np.full((2, 1), 3.0)
    optimizer.step()
    W.grad *= 0.0
    assert np.array_equal(optimizer.state_dict()["parameters"][0]["velocity"], np.full((2, 1), 3.0))
