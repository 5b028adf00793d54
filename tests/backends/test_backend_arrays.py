"""A Tensor keeps the array it is given, in its own backend, and finds the namespace once; two
backends in one operation are refused, naming both and the way out; arrays move only at the
edges (``.to``, ``ag.to_numpy``), on request."""
import pickle

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import backend
from array_backends import BACKENDS, FOREIGN, array_api_strict

X = np.array([[1.5, -2.0, 0.25], [3.0, 0.5, -1.0]])


@pytest.mark.parametrize("b", BACKENDS)
def test_a_tensor_keeps_its_backend_and_holds_float64(b):
    given = b.array(X)
    t = ag.Tensor(given)
    assert type(t.data) is type(given)            # never converted to another backend
    assert backend.of(t.data) is backend.of(given)
    assert "float64" in str(t.dtype)
    np.testing.assert_array_equal(ag.to_numpy(t), X)


@pytest.mark.parametrize("b", BACKENDS)
def test_integer_data_becomes_float64_and_booleans_stay_booleans(b):
    assert "float64" in str(ag.Tensor(b.array([1, 2], dtype=np.int32)).dtype)
    mask = ag.Tensor(b.array([True, False]))
    assert "bool" in str(mask.dtype) and not mask.requires_grad
    with pytest.raises(TypeError, match="a boolean mask has no gradient"):
        ag.Tensor(b.array([True, False]), requires_grad=True)


@pytest.mark.parametrize("b", BACKENDS)
def test_a_dtype_asked_for_is_the_backends_own(b):
    t = ag.Tensor(b.array(X), dtype=np.float32)
    assert type(t.data) is type(b.array(X)) and "float32" in str(t.dtype)
    assert "float32" in str(ag.Tensor(b.array(X), dtype="float32").dtype)


# (JAX arrays cannot be written into at all: the Tensor keeps the caller's array itself)
@pytest.mark.parametrize("b", [p for p in BACKENDS if p.id not in ("array_api_strict", "jax")])
def test_the_engine_never_writes_into_the_callers_array(b):
    given = b.array(X)
    t = ag.Tensor(given, requires_grad=True)
    with ag.no_grad():
        t.data[0, 0] = 100.0
    np.testing.assert_array_equal(ag.to_numpy(given), X)


@pytest.mark.parametrize("b", BACKENDS)
def test_results_live_where_their_inputs_live(b):
    W = ag.Tensor(b.array(X), requires_grad=True)
    Z = 2 * W + 1.0                                 # numbers join any backend
    assert backend.of(Z.data) is backend.of(W.data)
    assert Z._backend is W._backend                 # taken from the inputs, not looked up again


@pytest.mark.parametrize("b", FOREIGN)
def test_numpy_and_another_backend_in_one_op_are_refused_naming_both(b):
    t = ag.Tensor(b.array(X))
    for other in (ag.Tensor(X), X):
        with pytest.raises(ag.MixedBackendsError, match=rf"add: one operand lives in "
                                                        rf"({b.name}.*numpy|numpy.*{b.name}).*\.to\("):
            t + other


def test_two_devices_of_one_namespace_are_refused():
    xs = array_api_strict()
    cpu = ag.Tensor(xs.asarray(X))
    gpu = cpu.to(xs.Device("device1"))              # array-api-strict's second device: a GPU
    assert gpu.device == xs.Device("device1")
    with pytest.raises(ag.MixedBackendsError, match=r"mul: one operand lives in array_api_strict "
                                                    r"\(device .*CPU_DEVICE.*\), another in "
                                                    r"array_api_strict \(device .*device1.*\)"):
        cpu * gpu
    np.testing.assert_array_equal(ag.to_numpy(gpu.to(cpu) * cpu), X * X)


def test_two_namespaces_are_refused():
    torch = pytest.importorskip("torch")
    xs = array_api_strict()
    with pytest.raises(ag.MixedBackendsError, match=r"matmul: .*torch.*array_api_strict|"
                                                    r"matmul: .*array_api_strict.*torch"):
        ag.Tensor(torch.ones((2, 2))) @ ag.Tensor(xs.ones((2, 2)))


@pytest.mark.parametrize("b", FOREIGN)
def test_to_moves_a_leaf_and_keeps_its_name_and_requires_grad(b):
    W = ag.Tensor(X, requires_grad=True, name="W[1]")
    moved = W.to(b.array(X))                       # to another array's backend
    assert backend.of(moved.data) is backend.of(b.array(X))
    assert moved.requires_grad and moved.is_leaf and moved.name == "W[1]"
    back = moved.to(np)
    assert isinstance(back.data, np.ndarray) and back.data is not W.data
    np.testing.assert_array_equal(back.data, X)
    assert W.to(np) is W and moved.to(moved) is moved   # already there: itself


def test_to_a_namespace_and_a_device():
    torch = pytest.importorskip("torch")
    t = ag.Tensor(X).to(torch, device="cpu")
    assert isinstance(t.data, torch.Tensor) and t.data.dtype == torch.float64
    assert t.to("cpu") is t
    with pytest.raises(TypeError, match=r"to: 'no-such-device' is not a device of torch"):
        t.to("no-such-device")


def test_to_refuses_a_result_whose_gradient_could_not_flow_back():
    torch = pytest.importorskip("torch")
    W = ag.Tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"to: the tensor was computed from tensors that "
                                           r"require a gradient.*model.to"):
        (W * 2).to(torch)
    assert isinstance((W * 2).detach().to(torch).data, torch.Tensor)


@pytest.mark.parametrize("b", BACKENDS)
def test_to_numpy_takes_tensors_and_raw_arrays(b):
    np.testing.assert_array_equal(ag.to_numpy(b.array(X)), X)
    np.testing.assert_array_equal(ag.to_numpy(ag.Tensor(b.array(X))), X)
    assert isinstance(ag.to_numpy(ag.Tensor(b.array(X))), np.ndarray)


@pytest.mark.parametrize("b", FOREIGN)
def test_repr_names_the_backend(b):
    text = repr(ag.Tensor(b.array(X), dtype=np.float32, name="X"))
    assert text.startswith("Tensor([[ 1.5") and f"backend={b.name}" in text
    assert "dtype=float32" in text and "name='X'" in text
    assert "backend" not in repr(ag.Tensor(X))


@pytest.mark.parametrize("b", BACKENDS)
def test_a_tensor_of_any_backend_pickles_onto_the_same_backend(b):
    t = ag.Tensor(b.array(X))
    copy = pickle.loads(pickle.dumps(t))
    assert copy._backend is t._backend
    np.testing.assert_array_equal(ag.to_numpy(copy), X)


@pytest.mark.parametrize("b", BACKENDS)
def test_item_bool_and_len_work_on_every_backend(b):
    t = ag.Tensor(b.array([[2.5]]))
    assert t.item() == 2.5 and bool(t) and len(t) == 1


def test_an_unknown_object_is_refused_as_data():
    with pytest.raises(TypeError, match=r"Tensor: data must be numbers or an array of numbers, "
                                        r"got object"):
        ag.Tensor(object())



@pytest.mark.parametrize("b", FOREIGN)
def test_ag_compile_refuses_a_step_on_another_backend(b):
    W = ag.Tensor(b.array(X), requires_grad=True)
    refused = rf"compile: the step computes on {b.name}.*replays numpy steps only.*without ag.compile"
    with pytest.raises(TypeError, match=refused):             # an argument
        ag.compile(lambda x: (W @ x).sigmoid().mean())(ag.Tensor(b.array(X.T)))
    with pytest.raises(TypeError, match=refused):             # a captured leaf
        ag.compile(lambda: (W * 2.0).sum())()
