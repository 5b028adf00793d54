"""``check`` on every backend: gradcheck evaluates f where its inputs live, in float64, and
compares with finite differences (a correct function passes, a wrong vjp FAILS, on torch and
array-api-strict as on numpy); compare_derivation checks a hand derivation of a torch or Dask
graph against that backend's own autodiff; the sentinel reads each operation's values in its
own namespace (only a flag comes to the host) and refuses Dask, where reading them would
compute the graph at every operation."""
import importlib
import warnings

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend as ag_backend
from autograd_lite import check
from edges_util import DASK, EAGER, EDGE_BACKENDS, seed_arrays, seed_network


class Cube(ag.Primitive):
    """x³ with the right vjp (3x² g) or, ``wrong``, a factor forgotten (x² g)."""

    name = "cube"

    def __init__(self, wrong=False):
        self.wrong = wrong

    def forward(self, x):
        return x * x * x

    def vjp(self, g, inputs, output, wants):
        (x,) = inputs
        return (g * x * x * (1.0 if self.wrong else 3.0),)


def test_gradcheck_evaluates_f_in_its_inputs_backend():
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]'")
    seen = []

    def f(x):
        seen.append(type(x.data))
        return (x * x).sum()
    assert check.gradcheck(f, [torch.linspace(0.5, 1.5, 3, dtype=torch.float64)])
    assert set(seen) == {torch.Tensor}, "f must see the backend's arrays, never numpy stand-ins"


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_gradcheck_on_any_backend_passes_a_right_vjp_and_fails_a_wrong_one(backend, order):
    rng = np.random.default_rng(0)
    x = backend.array(rng.uniform(0.5, 1.5, (2, 3)))
    W = backend.array(rng.standard_normal((3, 2)))
    # Dask builds a graph per evaluation of f (order 2: of its gradient too), which takes
    # seconds for every element's stencils: random directions keep order 2 short there
    how = {"directions": 2} if backend.name == "dask" and order == 2 else {}
    right = check.gradcheck(lambda x, W: (Cube()(x) @ W).sigmoid(), [x, W], order=order, **how)
    assert right, right
    wrong = check.gradcheck(lambda x, W: (Cube(wrong=True)(x) @ W).sigmoid(), [x, W],
                            order=order, **how)
    assert not wrong
    assert wrong.worst.name.startswith("x0") and "FAIL" in str(wrong)
    # the same verdicts as on numpy, with numbers equal to round-off
    on_numpy = check.gradcheck(lambda x, W: (Cube(wrong=True)(x) @ W).sigmoid(),
                               [ag.to_numpy(x), ag.to_numpy(W)], order=order, **how)
    np.testing.assert_allclose(wrong.worst.autodiff, on_numpy.worst.autodiff, rtol=1e-9)
    np.testing.assert_allclose(wrong.worst.numeric, on_numpy.worst.numeric, rtol=1e-6)


def shifted_cubes(n, c=1.1):
    """f(x) = Σ x_i³ − (n − 1) c³ at x = (c, ..., c): J = c³ and dJ/dx_i = 3c² whatever n, so
    every element's step search is the one element's, step for step."""
    def f(x):
        return Cube()(x).sum() - (n - 1) * c ** 3
    return f, np.full(n, c)


@pytest.mark.parametrize("how", [{}, {"eps": 1e-6}, {"directions": 3}])
def test_gradcheck_on_dask_computes_a_few_times_whatever_the_number_of_elements(how):
    """The evaluations of f at every element's stencil are built lazily and computed together,
    one ``dask.compute`` per round of the step search: the inputs, backward's own compute,
    the gradients with J, then one per round (a fixed eps: one round), however many elements."""
    da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    counts = []
    for n in (1, 9):
        f, x = shifted_cubes(n)
        with Computes() as computes:
            result = check.gradcheck(f, [da.from_array(x, chunks=4)], **how)
        assert result, result
        counts.append(computes.count)
    assert counts[0] == counts[1], counts
    assert counts[1] == 4 if "eps" in how else counts[1] <= 8, counts


def test_gradcheck_on_dask_reads_a_large_round_in_batches_with_the_same_result(monkeypatch):
    """A round's evaluations come over at most EVALUATIONS_PER_COMPUTE at a time (so the
    graphs held at once stay bounded): 4 elements x 4 evaluations (a fixed eps) in batches of
    5 are 4 computes after the first three, and the same verdict and numbers."""
    da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    gradcheck_module = importlib.import_module("autograd_lite.check.gradcheck")
    x = np.linspace(0.5, 1.5, 4)
    whole = check.gradcheck(lambda x: Cube(wrong=True)(x).sum(), [da.from_array(x, chunks=3)],
                            eps=1e-6)
    monkeypatch.setattr(gradcheck_module, "EVALUATIONS_PER_COMPUTE", 5)
    with Computes() as computes:
        batched = check.gradcheck(lambda x: Cube(wrong=True)(x).sum(),
                                  [da.from_array(x, chunks=3)], eps=1e-6)
    assert computes.count == 3 + 4
    assert batched.to_dict() == whole.to_dict() and not batched


def test_gradcheck_on_dask_fails_a_wrong_vjp_at_the_element_numpy_names():
    da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    x = np.linspace(0.5, 1.5, 7)
    expected = check.gradcheck(lambda x: Cube(wrong=True)(x).sum(), [x])
    with Computes() as computes:
        wrong = check.gradcheck(lambda x: Cube(wrong=True)(x).sum(), [da.from_array(x, chunks=3)])
    assert not wrong and computes.count <= 8
    assert wrong.worst.worst_index == expected.worst.worst_index == (6,)
    np.testing.assert_allclose(wrong.worst.numeric, expected.worst.numeric, rtol=1e-9)
    assert wrong.worst.autodiff == pytest.approx(1.5 ** 2)  # x² g: the factor 3 forgotten


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_gradcheck_on_any_backend_upcasts_float32_and_says_so(backend):
    x = backend.array(np.linspace(0.5, 1.5, 4), dtype=np.float32)
    with pytest.warns(check.PrecisionWarning, match="float32"):
        result = check.gradcheck(lambda x: Cube()(x).sum(), [x], directions=3)
    assert result


def test_gradcheck_refuses_jax_without_float64_naming_the_way_out():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    if jax.config.jax_enable_x64:
        pytest.skip("jax_enable_x64 is on: JAX has float64 here")
    with pytest.raises(TypeError, match=r"gradcheck: input x0 lives in jax.*ag.to_numpy"):
        check.gradcheck(lambda x: (x * x).sum(), [jax.numpy.ones(3)])


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_compare_derivation_checks_a_hand_derivation_of_any_backends_graph(backend):
    """dZ[2] = (A[2] − Y)/m (eqs 77-78 with eq 76's 1/m) and dW[2] = dZ[2] A[1]ᵀ (eq 79): right,
    then with the 1/m forgotten, named as such; the hand rules get host arrays."""
    network = seed_network(backend)
    network["Z2"].named("Z[2]")
    network["A2"].named("A[2]")
    network["A1"].named("A[1]")
    network["Y"].named("Y")
    m = 5
    dZ2 = lambda v: (v["A[2]"] - v["Y"]) / m  # noqa: E731
    right = check.compare_derivation(network["J"], {
        "dZ[2]": dZ2, "dW[2]": lambda v: dZ2(v) @ v["A[1]"].T}, m=m)
    assert right, str(right)
    wrong = check.compare_derivation(network["J"], {
        "dZ[2]": lambda v: v["A[2]"] - v["Y"]}, m=m)
    assert not wrong and wrong.first_failure.label == "dZ[2]"
    assert "m = 5 times" in wrong.explanation or "1/m" in wrong.explanation, wrong.explanation
    # autodiff's gradient is the backend's own, brought to the host: numpy's to round-off
    on_numpy = seed_network(None)
    on_numpy["J"].backward()
    assert isinstance(right.row("dW[2]").values["autodiff"], np.ndarray)
    np.testing.assert_allclose(right.row("dW[2]").values["autodiff"], on_numpy["W2"].grad,
                               rtol=1e-12)


def test_compare_derivation_computes_a_dask_graph_once():
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    network = seed_network(DASK.values[0], composed=False)
    with Computes() as computes:
        report = check.compare_derivation(network["J"], {"W[1]": np.zeros((4, 3))})
    assert not report
    assert computes.count == 1, "J, autodiff's gradients and the leaves' values: one compute"


def _verdicts(report):
    return [(row.label, {name: None if pair is None else pair.passed
                         for name, pair in row.pairs.items()}) for row in report.rows]


@pytest.mark.parametrize("wrong", [None, "eq55"])
@pytest.mark.parametrize("through", ["compare", "compare_model"])
def test_compare_on_dask_computes_twice_and_reports_what_numpy_reports(through, wrong):
    """backward's own compute (J, dW[l], db[l]), then ONE more for everything else: X and Y for
    the hand derivation and finite differences, and the retained dZ[l], dA[l] (eqs 77-84)."""
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    arrays = seed_arrays(m=8)
    X, Y = arrays["X"], arrays["Y"]
    rules = ag.reference.wrong_rules(wrong) if wrong else ag.reference.SEED_RULES

    def run(X, Y):
        if through == "compare":
            return check.compare([arrays["W1"], arrays["W2"]], [arrays["b1"], arrays["b2"]], X, Y,
                                 ["sigmoid", "sigmoid"], rules=rules)
        model = ag.nn.MLP([3, 4, 1], activations="sigmoid")
        for linear, l in zip(model.layers, (1, 2)):
            linear.W.data, linear.b.data = arrays[f"W{l}"].copy(), arrays[f"b{l}"].copy()
        return check.compare_model(model, X, Y, rules=rules)
    expected = run(X, Y)
    dask_array = DASK.values[0].array
    with Computes() as computes:
        found = run(dask_array(X), dask_array(Y))
    assert computes.count == 2, [len(graph) for graph in computes.graphs]
    assert _verdicts(found) == _verdicts(expected) and found.passed == (wrong is None)
    assert (found.first_failure is None) == (expected.first_failure is None)
    if wrong:
        assert found.first_failure.label == expected.first_failure.label
        assert found.explanation == expected.explanation
    for row, row_expected in zip(found.rows, expected.rows):
        for way, value in row_expected.values.items():
            if value is None:  # a wrong rule's quantity that does not type-check
                assert row.values[way] is None
            else:
                np.testing.assert_allclose(row.values[way], value, rtol=1e-9, atol=1e-15)
    assert abs(found.J["autodiff"] - expected.J["autodiff"]) <= 1e-12


def saturating(backend):
    """A sigmoid pushed to exactly 1 (z = 50 > 36.7, eq 7) and the log-loss of eq 1 composed
    with log: saturation forward, log of 0, then NaN in the backward pass."""
    W = ag.Tensor(backend.array(np.array([[50.0, 0.0, 0.0]])), requires_grad=True, name="W[1]")
    X = ag.Tensor(backend.array(np.ones((3, 4))), name="X")
    Y = ag.Tensor(backend.array(np.array([[0.0, 1.0, 0.0, 1.0]])), name="Y")
    A = (W @ X).named("Z[1]").sigmoid().named("A[1]")
    J = -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()
    J.backward()
    return J


@pytest.mark.parametrize("backend", EAGER)
def test_the_sentinel_on_any_eager_backend_reports_what_it_reports_on_numpy(backend):
    numpy_backend = EAGER[0].values[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with check.sentinel(action="record") as expected:
            saturating(numpy_backend)
        with check.sentinel(action="record") as found:
            saturating(backend)
    assert expected.events, "the numpy run must see the saturation"
    assert [e.to_dict() for e in found.events] == [e.to_dict() for e in expected.events]


@pytest.mark.parametrize("backend", EAGER)
def test_the_sentinel_on_a_clean_network_stays_silent_on_any_backend(backend):
    with check.sentinel(action="raise") as watch:
        seed_network(backend)["J"].backward()
    assert watch.clean


def test_the_sentinel_refuses_dask_naming_the_way_out():
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    from dask_util import Computes
    with Computes() as computes, pytest.raises(TypeError, match=r"sentinel: .* Dask .*to\(np\)"):
        with check.sentinel():
            seed_network(DASK.values[0])
    assert computes.count == 0


def test_the_sentinel_reads_only_flags_on_another_backend(monkeypatch):
    """A clean operation on torch brings nothing to the host: the checks run in torch."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    moved = []
    real = ag_backend.to_numpy
    monkeypatch.setattr(ag_backend, "to_numpy", lambda a: moved.append(a) or real(a))
    W = ag.Tensor(torch.ones((2, 3), dtype=torch.float64), requires_grad=True)
    with check.sentinel(action="raise"):
        ((W @ torch.ones((3, 4), dtype=torch.float64)).sigmoid().sum()).backward()
    assert moved == []
    assert seed_arrays()  # the shared arrays stay numpy's
