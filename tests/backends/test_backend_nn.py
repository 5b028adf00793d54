"""nn, optim, saving and fit on every backend: ``model.to(...)`` moves a model in place (the same
Parameter objects), layers compute in their input's backend and refuse another one naming both
and ``model.to``, initialisers and Dropout draw numpy's values on every backend, an MLP trained
with SGD (eqs 74-75) or Adam equals numpy's run to 1e-12 relative, and a model or optimizer
saved from one backend loads into another."""
import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend, nn, optim, train
from autograd_lite.backend import MixedBackendsError
from array_backends import BACKENDS, FOREIGN


def where(b):
    """The Backend object of ArrayBackend ``b``."""
    return backend.of(b.array(np.zeros(1)))


def data(rng_seed=0, m=12):
    rng = np.random.default_rng(rng_seed)
    X = rng.standard_normal((3, m))
    return X, (X[:1] + 0.3 * X[1:2] > 0) * 1.0


def trained(make, like, optimizer, steps=4):
    """An MLP (tanh, logits) trained ``steps`` full-batch steps on data made by ``make``."""
    model = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=0, like=like)
    opt = optimizer(model)
    X, Y = (ag.Tensor(make(a)) for a in data())
    for _ in range(steps):
        J = ag.binary_cross_entropy_with_logits(model(X), Y)
        opt.zero_grad()
        J.backward()
        opt.step()
    return model, opt


OPTIMIZERS = {"sgd": lambda m: optim.SGD(m, lr=0.5, momentum=0.9, weight_decay=1e-3),
              "adam": lambda m: optim.Adam(m, lr=0.05),
              "rmsprop": lambda m: optim.RMSprop(m, lr=0.01, momentum=0.5, centered=True)}


def assert_same_values(model, reference):
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(ag.to_numpy(p.data), q.data, rtol=1e-12, atol=1e-15)


# --- model.to -----------------------------------------------------------------------------------

class WithBuffer(nn.Module):
    def __init__(self):
        self.linear = nn.Linear(3, 2, rng=0)
        self.register_buffer("running", np.arange(2.0).reshape(2, 1))

    def forward(self, X):
        return self.linear(X) + self.running


@pytest.mark.parametrize("b", BACKENDS)
def test_model_to_moves_every_parameter_grad_and_buffer_in_place_and_back(b):
    model = WithBuffer()
    X = np.random.default_rng(1).standard_normal((3, 4))
    model(X).sum().backward()
    W, before = model.linear.W, {n: p.data.copy() for n, p in model.named_parameters()}
    grad = W.grad.copy()
    assert model.to(b.array(np.zeros(1))) is model
    assert model.linear.W is W                      # the same Parameter, as PyTorch keeps it
    assert {backend.of(p.data) for p in model.parameters()} == {where(b)}
    assert backend.of(W.grad) is where(b) and backend.of(model.running) is where(b)
    np.testing.assert_array_equal(ag.to_numpy(W.grad), grad)
    out = model(b.array(X))                         # usable on its new backend
    assert backend.of(out.data) is where(b)
    model.to(np)
    for name, p in model.named_parameters():
        assert type(p.data) is np.ndarray
        np.testing.assert_array_equal(p.data, before[name])
    assert type(model.running) is np.ndarray


@pytest.mark.parametrize("b", BACKENDS)
def test_model_to_where_the_model_is_changes_nothing_and_backward_still_runs(b):
    model = nn.MLP([3, 4, 1], rng=0, like=b.array(np.zeros(1)))
    J = model(b.array(np.ones((3, 2)))).sum()
    versions = [p.version for p in model.parameters()]
    model.to(b.array(np.zeros(1)))
    assert [p.version for p in model.parameters()] == versions
    J.backward()
    assert all(backend.of(p.grad) is where(b) for p in model.parameters())


def test_model_to_takes_the_targets_of_tensor_to():
    torch = pytest.importorskip("torch")
    model = nn.MLP([3, 2], rng=0)
    model.to(torch)
    assert backend.of(model.layers[0].W.data).name == "torch"
    for target in ("cpu", torch.device("cpu")):
        assert model.to(target) is model and backend.of(model.layers[0].W.data).name == "torch"
    model.to(device="cpu").to(ag.Tensor(np.zeros(1)))
    assert type(model.layers[0].W.data) is np.ndarray


def test_model_to_refuses_dask_and_what_is_not_a_target_and_changes_nothing():
    da = pytest.importorskip("dask.array")
    model = nn.MLP([3, 2], rng=0)
    W = model.layers[0].W.data
    with pytest.raises(TypeError, match=r"MLP.to: parameters do not live in Dask.*keeps numpy "
                                        r"parameters.*one dask.compute"):
        model.to(da.zeros(3))
    with pytest.raises(TypeError, match="^MLP.to: 'cuda' is not a device of numpy"):
        model.to("cuda")
    with pytest.raises(TypeError, match="give a namespace"):
        model.to()
    assert model.layers[0].W.data is W
    with pytest.raises(TypeError, match="Linear: parameters do not live in Dask"):
        nn.Linear(3, 2, like=da.zeros(3))
    with pytest.raises(TypeError, match="^Linear: 'cuda' is not a device of numpy"):
        nn.MLP([3, 2], device="cuda")


def test_model_to_moves_all_or_nothing(monkeypatch):
    torch = pytest.importorskip("torch")
    model = nn.MLP([3, 4, 1], rng=0)
    arrays = [p.data for p in model.parameters()]
    real, calls = backend.moved, []

    def failing(array, target):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the device is full")
        return real(array, target)
    monkeypatch.setattr(backend, "moved", failing)
    with pytest.raises(RuntimeError, match="the device is full"):
        model.to(torch)
    assert [p.data for p in model.parameters()] == arrays  # the same arrays: nothing moved


def test_model_to_refuses_a_backend_that_would_change_the_dtype(monkeypatch):
    torch = pytest.importorskip("torch")
    model = nn.Linear(3, 2, rng=0)
    real = backend.moved
    monkeypatch.setattr(backend, "moved", lambda a, t: real(a, t).to(torch.float32)
                        if t.name == "torch" else real(a, t))  # a namespace without float64
    with pytest.raises(TypeError, match=r"Linear.to: torch on cpu cannot hold W as float64 \(it "
                                        r"would become float32\); nothing was moved"):
        model.to(torch)
    assert type(model.W.data) is np.ndarray


@pytest.mark.parametrize("b", FOREIGN)
def test_an_optimizer_made_before_model_to_steps_on_the_moved_parameters(b):
    model = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=0)
    opt = optim.SGD(model, lr=0.5)
    model.to(b.array(np.zeros(1)))
    reference, ref_opt = trained(np.asarray, None, lambda m: optim.SGD(m, lr=0.5), steps=1)
    X, Y = (ag.Tensor(b.array(a)) for a in data())
    J = ag.binary_cross_entropy_with_logits(model(X), Y)
    opt.zero_grad()
    J.backward()
    opt.step()
    assert_same_values(model, reference)


@pytest.mark.parametrize("b", FOREIGN)
def test_a_step_with_state_from_before_model_to_is_refused_naming_the_way_out(b):
    model, opt = trained(np.asarray, None, OPTIMIZERS["adam"], steps=1)
    model.to(b.array(np.zeros(1)))
    X, Y = (ag.Tensor(b.array(a)) for a in data())
    ag.binary_cross_entropy_with_logits(model(X), Y).backward()
    before = [ag.to_numpy(p.data).copy() for p in model.parameters()]
    with pytest.raises(MixedBackendsError, match=r"Adam.step: parameter 0 \(layers.0.W, W\[1\]\) "
                                                 r"lives in .* but its m in numpy; nothing was "
                                                 r"changed: .*optimizer.load_state_dict"):
        opt.step()
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(ag.to_numpy(p.data), old)
    opt.load_state_dict(opt.state_dict())   # the way out: the state goes where its parameter is
    assert opt.step() and backend.of(opt.state[0]["m"]) is where(b)


@pytest.mark.parametrize("b", FOREIGN)
def test_a_grad_assigned_in_another_backend_is_refused_by_the_step(b):
    W = nn.Parameter(b.array(np.ones((2, 2))), name="W")
    W.grad = np.ones((2, 2))
    with pytest.raises(MixedBackendsError, match=r"SGD.step: parameter 0 \(W\) lives in .* but its "
                                                 r"\.grad in numpy"):
        optim.SGD([W], lr=0.1).step()


# --- layers compute in their input's backend ------------------------------------------------------

@pytest.mark.parametrize("b", FOREIGN)
def test_an_input_in_another_backend_than_the_parameters_is_refused_naming_both_and_model_to(b):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 1, rng=1))
    X = b.array(np.ones((3, 2)))
    with pytest.raises(MixedBackendsError) as caught:
        model(X)
    message = str(caught.value)
    assert message.startswith("Linear(n_in=3, n_out=4, layer=1): its parameters live in numpy, "
                              f"its input in {where(b)!r}")
    assert "model.to(X)" in message and "X.to(...)" in message
    model.to(X)
    assert backend.of(model(X).data) is where(b)
    with pytest.raises(MixedBackendsError, match=r"its parameters live in .*, its input in numpy"):
        model(np.ones((3, 2)))


def test_a_mix_inside_forward_that_is_not_the_parameters_keeps_the_engines_message():
    torch = pytest.importorskip("torch")

    class Adds(nn.Module):
        def forward(self, a, b):
            return ag.Tensor(a) + ag.Tensor(b)
    with pytest.raises(MixedBackendsError, match="^add: one operand lives in"):
        Adds()(np.ones(2), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("b", BACKENDS)
def test_layers_activations_and_containers_compute_in_the_inputs_backend(b):
    X = np.random.default_rng(2).standard_normal((3, 6))
    layers = [nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.Softmax(), nn.LeakyReLU(), nn.ELU(),
              nn.GELU(approximate="tanh"), nn.Softplus(), nn.Identity()]
    for module in (*layers, nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU())):
        expected = module(X).data
        got = module.to(b.array(np.zeros(1)))(b.array(X))
        assert backend.of(got.data) is where(b), module
        np.testing.assert_allclose(ag.to_numpy(got), expected, rtol=1e-12, atol=1e-15)


def test_a_parameter_shows_its_backend():
    torch = pytest.importorskip("torch")
    assert repr(nn.Parameter(np.zeros((2, 3)), name="W")) == "Parameter('W', shape=(2, 3))"
    assert repr(nn.Parameter(torch.zeros(2, 3), name="W")) == \
        "Parameter('W', shape=(2, 3), backend=torch on cpu)"


# --- initialisers and Dropout: numpy's draws on every backend -----------------------------------

@pytest.mark.parametrize("b", BACKENDS)
@pytest.mark.parametrize("init", ["small", "xavier", "xavier_uniform", "he", "he_uniform", "zeros"])
def test_the_same_seed_draws_the_same_w_on_every_backend(b, init):
    numpy_layer = nn.Linear(4, 3, init=init, rng=7)
    layer = nn.Linear(4, 3, init=init, rng=7, like=b.array(np.zeros(1)))
    assert backend.of(layer.W.data) is where(b) and backend.of(layer.b.data) is where(b)
    np.testing.assert_array_equal(ag.to_numpy(layer.W), numpy_layer.W.data)
    for mlp, same in ((nn.MLP([4, 3, 2], rng=7, like=b.array(np.zeros(1))), nn.MLP([4, 3, 2], rng=7)),
                      (nn.MLP.seed_network(7, like=b.array(np.zeros(1))), nn.MLP.seed_network(7))):
        for p, q in zip(mlp.parameters(), same.parameters()):
            assert backend.of(p.data) is where(b)
            np.testing.assert_array_equal(ag.to_numpy(p), q.data)


@pytest.mark.parametrize("b", FOREIGN)
def test_an_initialiser_returning_another_backends_array_is_refused(b):
    foreign = lambda shape, rng: b.array(np.ones(shape))  # noqa: E731
    with pytest.raises(TypeError, match=r"initialiser '<lambda>' returned an array in .* for a "
                                        r"layer in numpy; return a numpy array"):
        nn.Linear(2, 3, init=foreign)
    layer = nn.Linear(2, 3, init=foreign, like=b.array(np.zeros(1)))  # its own backend: kept
    np.testing.assert_array_equal(ag.to_numpy(layer.W), np.ones((3, 2)))
    with pytest.raises(ValueError, match="returned non-finite values"):
        nn.Linear(2, 3, init=lambda s, r: b.array(np.full(s, np.nan)), like=b.array(np.zeros(1)))


@pytest.mark.parametrize("b", BACKENDS)
def test_dropout_draws_numpys_mask_on_every_backend_and_its_gradient_is_the_mask(b):
    X = np.random.default_rng(3).standard_normal((4, 5))
    expected = nn.Dropout(0.4, rng=11)(X).data
    x = ag.Tensor(b.array(X), requires_grad=True)
    out = nn.Dropout(0.4, rng=11)(x)
    assert backend.of(out.data) is where(b)
    np.testing.assert_allclose(ag.to_numpy(out), expected, rtol=1e-15)
    out.sum().backward()
    np.testing.assert_allclose(ag.to_numpy(x.grad), (expected != 0) / 0.6, rtol=1e-15)


def test_dropout_on_dask_draws_each_chunk_lazily_and_reproducibly():
    da = pytest.importorskip("dask.array")
    X = ag.Tensor(da.ones((3, 40), chunks=(3, 10)))
    first, again = (nn.Dropout(0.5, rng=2)(X) for _ in range(2))
    assert backend.of(first.data).is_dask
    mask = ag.to_numpy(first)
    np.testing.assert_array_equal(mask, ag.to_numpy(again))
    assert set(np.unique(mask)) == {0.0, 2.0}
    assert len({mask[:, i:i + 10].tobytes() for i in range(0, 40, 10)}) == 4  # chunks differ


# --- training on every backend ----------------------------------------------------------------------

@pytest.mark.parametrize("b", BACKENDS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_mlp_trained_on_any_backend_equals_numpys_run(b, name):
    reference, ref_opt = trained(np.asarray, None, OPTIMIZERS[name])
    model, opt = trained(lambda a: b.array(a), b.array(np.zeros(1)), OPTIMIZERS[name])
    assert {backend.of(p.data) for p in model.parameters()} == {where(b)}
    assert_same_values(model, reference)
    for state, ref_state in zip(opt.state, ref_opt.state):
        for key, value in state.items():
            assert isinstance(value, int) or backend.of(value) is where(b)
            np.testing.assert_allclose(ag.to_numpy(value), ref_state[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("b", BACKENDS)
def test_clip_grad_norm_computes_in_the_gradients_backend(b):
    for norm_type in (2.0, 1.0, 3.0, np.inf):
        grads = [np.arange(6.0).reshape(2, 3) - 2, np.array([[4.0], [-5.0]])]
        ps = [nn.Parameter(b.array(g)) for g in grads]
        qs = [nn.Parameter(g) for g in grads]
        for p, q, g in zip(ps, qs, grads):
            p.grad, q.grad = b.array(g), g.copy()
        total = optim.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
        assert total == pytest.approx(optim.clip_grad_norm_(qs, 1.0, norm_type=norm_type), rel=1e-12)
        for p, q in zip(ps, qs):
            assert backend.of(p.grad) is where(b)
            np.testing.assert_allclose(ag.to_numpy(p.grad), q.grad, rtol=1e-12)
    ps[0].grad = b.array(np.full((2, 3), np.nan))
    with pytest.raises(optim.NonFiniteGradientError, match=r"\(6 nan, 0 inf\)"):
        optim.clip_grad_norm_(ps, 1.0)


@pytest.mark.parametrize("b", BACKENDS)
def test_fit_trains_a_model_on_the_datas_backend_as_on_numpy(b):
    X, Y = data(m=30)

    def run(make, like):
        model = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=0, like=like)
        history = train.fit(model, ag.binary_cross_entropy_with_logits, make(X), make(Y),
                            optim.Adam(model, lr=0.05), 3, batch_size=8, rng=1,
                            metric=train.accuracy, validation=(make(X), make(Y)),
                            early_stopping=train.EarlyStopping(patience=5), progress=False,
                            verbose=False)
        return model, history
    reference, expected = run(np.asarray, None)
    model, history = run(lambda a: b.array(a), b.array(np.zeros(1)))
    assert {backend.of(p.data) for p in model.parameters()} == {where(b)}
    assert_same_values(model, reference)
    np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-12)
    assert history.metrics.keys() == expected.metrics.keys()
    for key, values in history.metrics.items():
        np.testing.assert_allclose(values, expected.metrics[key], rtol=1e-12)


@pytest.mark.parametrize("b", FOREIGN)
def test_fit_refuses_data_in_another_backend_than_the_model(b):
    model = nn.MLP([3, 1], rng=0)
    X, Y = data()
    with pytest.raises(MixedBackendsError, match=r"its parameters live in numpy, its input in"):
        train.fit(model, ag.binary_cross_entropy_with_logits, b.array(X), b.array(Y),
                  optim.SGD(model, lr=0.1), 1, progress=False, verbose=False)
    X[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"fit: X holds 1 nan and 0 inf entries, in 1 of 12 "
                                         r"samples \(first: column 3\)"):
        train.fit(model.to(b.array(np.zeros(1))), ag.binary_cross_entropy_with_logits,
                  b.array(X), b.array(Y), optim.SGD(model, lr=0.1), 1, progress=False,
                  verbose=False)


def test_fit_on_dask_data_keeps_numpy_parameters_and_computes_once_per_step():
    da = pytest.importorskip("dask.array")
    from dask.callbacks import Callback
    X, Y = data(m=40)

    class Count(Callback):
        computes = 0

        def _start(self, dsk):
            Count.computes += 1

    def run(x, y):
        model = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=0)
        train.fit(model, ag.binary_cross_entropy_with_logits, x, y, optim.SGD(model, lr=0.5),
                  3, progress=False, verbose=False)
        return model
    reference = run(X, Y)
    with Count():
        model = run(da.from_array(X, chunks=(3, 10)), da.from_array(Y, chunks=(1, 10)))
    assert all(type(p.data) is np.ndarray for p in model.parameters())
    assert_same_values(model, reference)
    # per step: backward's one compute (X and Y checked finite within the first); J's value
    # came with it, so reading it starts none
    assert Count.computes == 3


def test_fit_refuses_dask_data_holding_nan_within_its_first_compute_with_nothing_changed():
    da = pytest.importorskip("dask.array")
    X, Y = data(m=40)
    X[1, 25], X[2, 25], X[0, 31] = np.nan, np.inf, np.nan
    model = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=0)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"fit: X holds 2 nan and 1 inf entries, in 2 of 40 "
                                         r"samples \(first: column 25\); .*Drop or impute"):
        train.fit(model, ag.binary_cross_entropy_with_logits, da.from_array(X, chunks=(3, 10)),
                  da.from_array(Y, chunks=(1, 10)), optim.SGD(model, lr=0.5), 2,
                  progress=False, verbose=False)
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)


# --- saving on one backend, loading into another -------------------------------------------------

@pytest.mark.parametrize("source", BACKENDS)
@pytest.mark.parametrize("target", BACKENDS)
def test_a_model_and_optimizer_saved_from_one_backend_load_into_another(source, target, tmp_path):
    model, opt = trained(lambda a: source.array(a), source.array(np.zeros(1)), OPTIMIZERS["adam"])
    model.save(tmp_path / "model.npz")
    opt.save(tmp_path / "adam.npz")
    with np.load(tmp_path / "model.npz") as saved:   # the file holds plain numpy arrays
        assert saved["layers.0.W"].dtype == np.float64
    loaded = nn.MLP([3, 5, 1], ["tanh", "identity"], rng=9, like=target.array(np.zeros(1)))
    loaded_opt = OPTIMIZERS["adam"](loaded)
    loaded.load(tmp_path / "model.npz")
    loaded_opt.load(tmp_path / "adam.npz")
    for p, q in zip(loaded.parameters(), model.parameters()):
        assert backend.of(p.data) is where(target)
        np.testing.assert_array_equal(ag.to_numpy(p), ag.to_numpy(q))
    for state, saved in zip(loaded_opt.state, opt.state):
        assert backend.of(state["m"]) is where(target) and state["t"] == saved["t"]
        np.testing.assert_array_equal(ag.to_numpy(state["v"]), ag.to_numpy(saved["v"]))
    # the state_dict round trip in memory too, arrays of the source's backend given to the target
    loaded.load_state_dict(model.state_dict())
    assert backend.of(loaded.layers[0].W.data) is where(target)


@pytest.mark.parametrize("b", FOREIGN)
def test_loading_a_wrong_file_into_a_moved_model_changes_nothing(b, tmp_path):
    model = nn.MLP([3, 5, 1], rng=0, like=b.array(np.zeros(1)))
    nn.MLP([3, 4, 1], rng=0).save(tmp_path / "other.npz")
    before = [p.data for p in model.parameters()]
    with pytest.raises(ag.io.BadFileError, match=r"has shape \(5, 3\) in the model but \(4, 3\)"):
        model.load(tmp_path / "other.npz")
    assert [p.data for p in model.parameters()] == before
    opt = optim.Adam(model)
    other = nn.MLP([3, 4, 1], rng=0)
    other_opt = optim.Adam(other)
    other(np.ones((3, 2))).sum().backward()
    other_opt.step()
    other_opt.save(tmp_path / "adam.npz")
    with pytest.raises(ag.io.BadFileError, match=r"parameter 0 \(layers.0.W, W\[1\]\) has shape "
                                                 r"\(5, 3\) here but \(4, 3\) in the state"):
        opt.load(tmp_path / "adam.npz")
    assert opt.state == [{} for _ in model.parameters()] and opt.steps == 0
    state = model.state_dict()
    state["layers.1.b"] = np.array([[np.nan]])
    with pytest.raises(ValueError, match=r"non-finite parameters: layers.1.b \(b\[2\]\) has 1 nan"):
        model.load_state_dict(state)
    assert [p.data for p in model.parameters()] == before
