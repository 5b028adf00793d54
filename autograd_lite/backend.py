"""Where an array lives: its namespace (numpy, torch, CuPy, JAX, Dask, array-api-strict) and
its device. The one module that knows backends.

A Tensor keeps the array it is given and looks up its ``Backend`` once, when it is made
(``of``); a result takes its inputs' backend without a lookup. The primitives compute with
``xp = namespace(x)``, the standard's functions (array-api-compat makes numpy, CuPy, torch and
Dask speak it), and ask this module for what the standard lacks (``erf``, ``add_at``,
``errstate``). Arrays move between backends only at the edges, on request: ``Tensor.to``,
``to_numpy``. Mixing two backends in one operation is refused, naming both and the way out,
as PyTorch refuses a CPU tensor and a CUDA tensor; Python numbers join any backend, and numpy
arrays join Dask's (a Dask graph embeds them).
"""
from __future__ import annotations

import contextlib
import math
import numbers
import warnings
import weakref

import numpy as np


class _NumpyNamespace:
    """numpy's array-API namespace, array-api-compat's numpy, found function by function: the
    functions numpy already has as the standard writes them (exp, log, where, sum, ...) are
    numpy's own, as array-api-compat's numpy gives them too; the others (astype, concat,
    permute_dims, asarray with device=, ...) come from array-api-compat's numpy, imported the
    first time one is asked for. So importing the engine and a step on ndarrays never load it."""

    __name__ = "numpy"

    def __getattr__(self, name):
        if name in _NUMPY_OWN:
            found = getattr(np, name)
        else:
            import array_api_compat.numpy
            found = getattr(array_api_compat.numpy, name)
        setattr(self, name, found)  # found once: later lookups are plain attributes
        return found


# numpy's own functions that are the standard's as the engine calls them: those array-api-compat's
# numpy also takes from numpy, and ones_like/zeros_like, which it wraps only to take device=.
_NUMPY_OWN = frozenset((
    "abs", "all", "any", "broadcast_to", "cos", "exp", "expm1", "float32", "float64", "int64",
    "isfinite", "isinf", "log", "max", "maximum", "mean", "min", "minimum", "ones_like",
    "result_type", "sin", "sqrt", "square", "stack", "sum", "take", "tanh", "where", "zeros_like"))
numpy_namespace = _NumpyNamespace()


class MixedBackendsError(TypeError):
    """One operation was given arrays of two backends (namespaces or devices)."""


class Backend:
    """A namespace and a device: one shared object per pair, so two tensors are on the same
    backend exactly when their ``Backend`` objects are the same object."""

    __slots__ = ("xp", "device", "name", "is_numpy", "is_dask")

    def __init__(self, xp, device):
        self.xp = xp
        self.device = device
        self.name = _namespace_name(xp)
        self.is_numpy = xp is numpy_namespace
        self.is_dask = self.name == "dask"

    def __repr__(self):
        return self.name if self.is_numpy else f"{self.name} on {self.device}"

    def __reduce__(self):  # one object per backend, also through pickle and copy
        if self.is_numpy:
            return "NUMPY"
        device = self.device
        if self.name == "jax":  # a JAX device does not pickle: its platform and number do
            device = ("jax", device.platform, device.id)
        return _backend_of, (self.xp.__name__, device)


def _backend_of(namespace_name, device):
    import importlib
    xp = importlib.import_module(namespace_name)
    if isinstance(device, tuple) and device[0] == "jax":
        import jax
        device = next(d for d in jax.devices(device[1]) if d.id == device[2])
    return of(xp.asarray(0.0, device=device))


def _namespace_name(xp) -> str:
    name = xp.__name__
    for known in ("jax", "cupy", "torch", "dask", "array_api_strict", "numpy"):  # jax.numpy is jax
        if known in name.split("."):
            return known
    return name


NUMPY = Backend(numpy_namespace, "cpu")
_BACKENDS = {(numpy_namespace, "'cpu'"): NUMPY}
_NAMESPACE_OF_TYPE: dict = {}  # array_namespace depends on the type alone
_NUMPY_TYPES = (np.ndarray, np.generic, numbers.Number)


def of(array) -> Backend:
    """The backend of ``array``: a numpy array, numpy scalar or Python number is numpy's."""
    if type(array) is np.ndarray or isinstance(array, _NUMPY_TYPES):
        return NUMPY
    xp = namespace(array)
    device = _compat().device(array)
    key = (xp, repr(device))
    backend = _BACKENDS.get(key)
    if backend is None:
        backend = _BACKENDS[key] = Backend(xp, device)
    return backend


def _compat():
    """array-api-compat, imported when an array that is not numpy's first shows up."""
    import array_api_compat
    return array_api_compat


def namespace(array):
    """The array-API namespace of ``array`` (array-api-compat's, looked up once per type)."""
    return numpy_namespace if type(array) is np.ndarray else _looked_up(array)


def _looked_up(array):
    xp = _NAMESPACE_OF_TYPE.get(type(array))
    if xp is not None:
        return xp
    try:
        xp = numpy_namespace if isinstance(array, _NUMPY_TYPES) else _compat().array_namespace(array)
    except TypeError:
        raise TypeError(f"{type(array).__module__}.{type(array).__name__} is not an array "
                        f"autograd_lite knows: give a numpy, CuPy, torch, JAX, Dask or "
                        f"array-API array, a number or a list of numbers") from None
    _NAMESPACE_OF_TYPE[type(array)] = xp
    return xp


def is_array(x) -> bool:
    """True for an array of any backend (not a Tensor), a numpy scalar or a Python number."""
    kind = type(x)
    known = _IS_ARRAY.get(kind)
    if known is None:
        known = _IS_ARRAY[kind] = isinstance(x, _NUMPY_TYPES) or _compat().is_array_api_obj(x)
    return known


_IS_ARRAY = {np.ndarray: True, float: True, int: True}  # by type: asked for every vjp


def is_foreign_array(x) -> bool:
    """True for an array of a backend other than numpy (numbers and lists are not arrays)."""
    return not isinstance(x, _NOT_FOREIGN) and is_array(x)


_NOT_FOREIGN = (np.ndarray, np.generic, numbers.Number, list, tuple)


# --- mixing -------------------------------------------------------------------------------------

def join(op_name, backends):
    """The backend of an operation on arrays of ``backends``: all the same, or numpy arrays
    with one Dask backend (Dask embeds them). Anything else is refused, naming the two."""
    first = backends[0]
    others = [b for b in backends if b is not first]
    if not others:
        return first
    distinct = list(dict.fromkeys(backends))
    dask = [b for b in distinct if b.is_dask]
    if len(dask) == 1 and all(b is NUMPY or b.is_dask for b in distinct):
        return dask[0]
    a, b = distinct[0], distinct[1]
    raise MixedBackendsError(
        f"{op_name}: one operand lives in {_describe(a)}, another in {_describe(b)}; "
        f"autograd_lite never moves data silently. Move one of them first: "
        f"tensor.to(other_tensor), tensor.to(namespace, device=...), or ag.to_numpy(x)")


def describe(backend) -> str:
    """``backend`` as error messages name it: "numpy", "torch (device cpu)"."""
    return "numpy" if backend.is_numpy else f"{backend.name} (device {backend.device})"


_describe = describe


def result(out, where, op_name):
    """A primitive's output for inputs on ``where`` (not numpy): it must stay there."""
    got = of(out)
    if got is not where:
        raise MixedBackendsError(
            f"{op_name}: forward was given arrays in {_describe(where)} but returned one in "
            f"{_describe(got)}; a primitive computes in its inputs' namespace "
            f"(xp = ag.backend.namespace(x))")
    return out


# --- making arrays ------------------------------------------------------------------------------

def new_array(data, dtype=None):
    """The array and backend of ``Tensor(data, dtype=dtype)``: ``data`` copied (numpy, torch,
    CuPy, array-api-strict) or kept (Dask and JAX arrays cannot be written into), in its own
    backend, as ``dtype``; without one, boolean data stays boolean and numbers become the
    backend's float64."""
    if type(data) is np.ndarray and dtype is None and data.dtype.kind in "iuf":
        return np.array(data, dtype=np.float64), NUMPY  # numpy's numbers: a float64 copy
    if is_foreign_array(data):
        where = of(data)
        return copied(data, where, _dtype_for(data.dtype, dtype, where)), where
    try:
        kind = np.asarray(data).dtype.kind
    except (ValueError, TypeError):  # ragged nested lists
        kind = None
    if dtype is None and kind not in ("b", "i", "u", "f"):
        text = repr(data) if len(repr(data)) <= 60 else repr(data)[:57] + "..."
        raise TypeError(f"Tensor: data must be numbers or an array of numbers, got "
                        f"{type(data).__name__} {text}")
    dtype = dtype if dtype is not None else (np.bool_ if kind == "b" else np.float64)
    return np.array(data, dtype=dtype, copy=True), NUMPY


def _dtype_for(data_dtype, dtype, where):
    if dtype is not None:
        return dtype_in(where, dtype)
    kind = dtype_kind(data_dtype)
    if kind == "b":
        return data_dtype
    if kind in "iuf":
        return default_float(where)
    raise TypeError(f"Tensor: data of dtype {data_dtype} is not supported (complex gradients "
                    f"are not); give real numbers, or pass dtype=")


def default_float(backend):
    """float64, the engine's default, in ``backend``'s namespace; refused where the namespace
    has none (JAX without ``jax_enable_x64``)."""
    xp = backend.xp
    if backend.name == "jax":
        import jax
        if not jax.config.jax_enable_x64:
            raise TypeError("Tensor: JAX computes in float32 unless jax_enable_x64 is set; "
                            "pass dtype=jax.numpy.float32, or call "
                            "jax.config.update('jax_enable_x64', True) first")
    if not hasattr(xp, "float64"):
        raise TypeError(f"Tensor: the {backend.name} namespace has no float64; pass dtype=")
    return xp.float64


def dtype_in(backend, dtype):
    """``dtype`` (a numpy dtype, a name, or the namespace's own dtype) in ``backend``'s
    namespace."""
    if backend.is_numpy:
        return np.dtype(dtype)
    xp = backend.xp
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # the namespace's own dtype object (torch.float32, ...)
    found = getattr(xp, "bool" if name == "bool" else name, None)
    if found is None:
        raise TypeError(f"Tensor: the {backend.name} namespace has no dtype {name}")
    return found


def dtype_kind(dtype) -> str:
    """numpy's one-letter kind of any namespace's dtype: 'b', 'i', 'u', 'f', 'c'."""
    return dtype.kind if isinstance(dtype, np.dtype) else _kind_of(dtype)


def _kind_of(dtype) -> str:
    """The kind of a dtype numpy can read (a name, a type), or of another namespace's dtype
    by its name (torch.float32, ...)."""
    try:
        return np.dtype(dtype).kind
    except TypeError:
        pass
    text = str(dtype).rpartition(".")[2]
    for prefix, kind in (("bool", "b"), ("uint", "u"), ("int", "i"), ("float", "f"),
                         ("bfloat", "f"), ("complex", "c")):
        if text.startswith(prefix):
            return kind
    return "O"


def copied(array, backend, dtype):
    """A new array of ``dtype`` with ``array``'s values, in its own backend: the engine never
    writes into an array the caller owns. Dask and JAX arrays cannot be written into, so they
    are kept (cast where ``dtype`` differs)."""
    xp = backend.xp
    if backend.is_dask or backend.name == "jax":
        return array if array.dtype == dtype else xp.astype(array, dtype)
    return xp.asarray(array, dtype=dtype, copy=True)


def constant(value, backend, dtype):
    """A number or numpy array as an array of ``backend`` (a number joins any backend; a numpy
    array joins Dask as it is)."""
    if backend.is_numpy:
        return np.asarray(value, dtype=dtype)
    if backend.is_dask and isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    return backend.xp.asarray(value, dtype=dtype, device=backend.device)


def chunked_like(value, like):
    """A numpy ``value`` whose last axis runs along ``like``'s (a Dask array's): as a Dask array
    chunked as ``like`` is along that axis, so an operation on both runs chunk by chunk (Dask
    would otherwise make one task of all of ``value`` and everything computed from it). Any
    other ``value`` as it is."""
    if not isinstance(value, np.ndarray) or isinstance(like, np.ndarray) \
            or not _compat().is_dask_array(like):
        return value
    import dask.array
    return dask.array.from_array(value, chunks=value.shape[:-1] + (like.chunks[-1],))


# --- moving at the edges ----------------------------------------------------------------------

def to_numpy(array) -> np.ndarray:
    """``array`` as a numpy array on the host: a numpy array as it is, a Dask array computed,
    a device array copied to the host."""
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, (np.generic, numbers.Number)):
        return np.asarray(array)
    import array_api_compat
    if array_api_compat.is_dask_array(array):
        name, value = getattr(array, "_host_value", (None, None))
        if name == array.name:  # computed already, by the backward pass that made it
            return value.copy()
        import dask
        return np.asarray(computed_with_checks(array, dask.compute)[0])
    if array_api_compat.is_torch_array(array):
        return array.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(array):
        return array.get()
    if array_api_compat.is_jax_array(array):
        return np.asarray(array)
    xp = namespace(array)
    if xp.__name__.startswith("array_api_strict"):
        return np.asarray(xp.asarray(array, device=xp.Device("CPU_DEVICE"), copy=True))
    try:
        return np.from_dlpack(array)
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return np.asarray(array)


def to_numpy_all(arrays) -> list:
    """Each of ``arrays`` as ``to_numpy`` gives it, the Dask ones computed together in ONE
    ``dask.compute`` (the work they share runs once), not one compute each."""
    arrays = list(arrays)
    lazy = [i for i, a in enumerate(arrays)
            if not isinstance(a, np.ndarray) and _compat().is_dask_array(a)]
    if lazy:
        import dask
        for i, value in zip(lazy, dask.compute(*[arrays[i] for i in lazy])):
            arrays[i] = value
    return [to_numpy(a) for a in arrays]


def resolve(target, device=None, current=None) -> Backend:
    """The backend ``Tensor.to`` means: ``target`` is a namespace (``numpy``, ``torch``,
    ``array_api_strict``, ...), an array whose backend to join, or a device of ``current``'s
    namespace (``"cuda"``, ``torch.device(...)``, ``array_api_strict.Device(...)``)."""
    if is_array(target):
        return of(target)
    if _looks_like_namespace(target):
        xp = numpy_namespace if target is np else _compat().array_namespace(
            target.asarray(0.0) if hasattr(target, "asarray") else target.zeros(1))
        if device is None:
            return of(xp.asarray(0.0)) if xp is not numpy_namespace else NUMPY
        return of(xp.asarray(0.0, device=device))
    if current is None:
        raise TypeError(f"to: {target!r} is neither a namespace, an array nor a device")
    if device is not None:
        raise TypeError("to: give a namespace and a device, or a device alone")
    try:
        probe = current.xp.asarray(0.0, device=target)
    except Exception as error:  # each backend refuses an unknown device its own way
        raise TypeError(f"to: {target!r} is not a device of {current.name} ({error}); to move "
                        f"to another namespace pass it: tensor.to(torch, device='cuda')") from None
    return of(probe)


def _looks_like_namespace(target) -> bool:
    return getattr(target, "__name__", None) is not None and hasattr(target, "asarray") \
        and type(target).__name__ == "module"


def moved(array, target: Backend):
    """``array`` copied to the ``target`` backend (through the host when the namespaces
    differ)."""
    source = of(array)
    if source is target:
        return array
    if source.xp is target.xp and not target.is_numpy:
        return _compat().to_device(array, target.device)
    host = to_numpy(array)
    if target.is_numpy:
        return np.array(host, copy=True)
    if target.is_dask:
        return target.xp.asarray(host)
    return target.xp.asarray(np.ascontiguousarray(host), device=target.device, copy=True)


# --- what the standard lacks -------------------------------------------------------------------

def errstate(xp, **kwargs):
    """numpy's floating-point warnings switched as asked, for numpy's namespace ``xp``; other
    backends do not warn, so there is nothing to switch."""
    return np.errstate(**kwargs) if xp is numpy_namespace else contextlib.nullcontext()


def all_finite(array) -> bool:
    """True when no element of ``array`` is nan or inf: computed in its own namespace, one
    boolean brought to the host (a Dask array is computed: give it computed arrays)."""
    if isinstance(array, np.ndarray):
        return bool(np.isfinite(array).all())
    xp = namespace(array)
    return bool(xp.all(xp.isfinite(array)))


def nonfinite_counts(array) -> tuple:
    """``(number of nan, number of inf)`` in ``array``, counted in its own namespace."""
    xp = namespace(array)
    return tuple(int(xp.sum(xp.astype(found(array), xp.int64))) for found in (xp.isnan, xp.isinf))


def norm(array, p=2.0) -> float:
    """The ``p``-norm of all of ``array``'s elements as one vector (``p`` > 0 or ``math.inf``),
    computed in its own namespace, as a Python float."""
    xp = namespace(array)
    if p == math.inf:
        return float(xp.max(xp.abs(array)))
    return float(xp.sqrt(xp.sum(array * array)) if p == 2 else xp.sum(xp.abs(array) ** p) ** (1 / p))


def refuse_mixed(owner, reference, arrays, way_out):
    """Refuse, with a MixedBackendsError naming ``owner`` (a text, or a function giving it,
    called only to refuse), both backends and ``way_out``, any array of ``arrays`` (label ->
    array; numbers are skipped) in another backend than ``reference``: adding them would need a
    silent conversion."""
    where = of(reference)
    for label, array in arrays.items():
        if of(array) is not where and not isinstance(array, numbers.Number):
            raise MixedBackendsError(f"{owner() if callable(owner) else owner} lives in {where!r} "
                                     f"but its {label} in {of(array)!r}; nothing was changed: "
                                     f"{way_out}")


def copy_of(array):
    """A new array with ``array``'s values, dtype and backend (Dask and JAX arrays, which
    cannot be written into, are themselves)."""
    if isinstance(array, np.ndarray):
        return array.copy()
    return copied(array, of(array), array.dtype)


def erfc(x):
    """The complementary error function of ``x``, elementwise, from the backend's special
    functions (numpy has none: Python's ``math.erfc``, correct to float64 rounding, element by
    element); refused where the backend has none."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(_math_erfc(x.astype(np.float64)), dtype=x.dtype)
    import array_api_compat
    if array_api_compat.is_torch_array(x):
        import torch
        return torch.special.erfc(x)
    if array_api_compat.is_jax_array(x):
        import jax.scipy.special
        return jax.scipy.special.erfc(x)
    if array_api_compat.is_cupy_array(x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erfc(x)
    if array_api_compat.is_dask_array(x):
        return x.map_blocks(erfc, dtype=x.dtype)
    raise TypeError(f"gelu: the exact gelu needs erfc, which the {of(x).name} namespace does "
                    f"not have (the array API standard has none); use gelu(approximate='tanh')")


_math_erfc = np.frompyfunc(math.erfc, 1, 1)


def take(x, index):
    """``x[index]`` for any index numpy understands (integer lists and arrays, boolean masks,
    slices): an ndarray's own indexing; elsewhere the standard's ``take`` at the flat positions
    the index reads (the standard indexes with integer arrays only along every axis at once)."""
    if isinstance(x, np.ndarray):
        return np.asarray(x[index])
    xp = namespace(x)
    positions = flat_positions(x.shape, index)
    picked = xp.take(xp.reshape(x, (-1,)), _on(xp, positions.reshape(-1), x))
    return xp.reshape(picked, positions.shape)


def add_at(array, index, values):
    """``array`` with ``values`` added at ``index``, repeated indices adding up: numpy's
    ``np.add.at`` in place; torch's ``index_add_``, JAX's ``.at[].add``, CuPy's
    ``scatter_add``; elsewhere (the standard has no scatter) a product with the one-hot matrix
    of the flat positions (memory: size x number of values)."""
    if isinstance(array, np.ndarray):
        np.add.at(array, index, values)
        return array
    import array_api_compat
    xp = namespace(array)
    positions = flat_positions(array.shape, index)
    values = xp.reshape(xp.broadcast_to(values, positions.shape), (-1,))
    flat, positions = xp.reshape(array, (-1,)), positions.reshape(-1)
    if array_api_compat.is_torch_array(array):
        import torch
        flat = flat.clone().index_add_(0, torch.as_tensor(positions, device=flat.device), values)
    elif array_api_compat.is_jax_array(array):
        flat = flat.at[positions].add(values)
    elif array_api_compat.is_cupy_array(array):
        import cupyx
        flat = flat.copy()
        cupyx.scatter_add(flat, _on(xp, positions, flat), values)
    else:
        hits = xp.arange(flat.shape[0], device=device_of(flat))[:, None] == \
            _on(xp, positions, flat)[None, :]
        flat = flat + xp.matmul(xp.astype(hits, values.dtype), values)
    return xp.reshape(flat, array.shape)


def writable(array) -> bool:
    """Whether ``array`` can be written into in place: not a JAX array (immutable) nor a Dask
    array (a recipe, not memory)."""
    if isinstance(array, np.ndarray):
        return True
    compat = _compat()
    return not (compat.is_jax_array(array) or compat.is_dask_array(array))


def add_to_slices(array, index, values):
    """``array[index] += values`` for a basic index (slices, integers): in place for numpy,
    array-api-extra's ``at(...).add`` elsewhere (a new array where arrays cannot be written)."""
    if isinstance(array, np.ndarray):
        array[index] += values
        return array
    import array_api_extra as xpx
    return xpx.at(array, index).add(values)


# --- Dask: the one compute of a backward pass -----------------------------------------------------

def materialize(root_value, found):
    """A backward pass's lazy results, computed together in ONE ``dask.compute``.

    ``root_value`` is the Dask array backward started from (J); ``found`` the traversal's
    ``(x, dJ/dx)`` pairs (``x`` a leaf Tensor or a node). Forward and backward only
    built one graph; this runs it for J's value and every gradient of a tensor held in memory
    (the parameters W[l], b[l]: small), so each such ``.grad`` is an ordinary array and the
    work they share (the forward pass, each dZ[l]) runs once. Its sums over the samples
    (eqs 79-80, 83-84) are Dask's tree reductions; under a ``dask.distributed`` Client it runs
    on the workers. A gradient of a Dask tensor (the data X, a retained dZ[l]) is as big as its
    tensor: it stays a Dask array. Returns J's value (its computed chunk, still a Dask array
    that carries its host value, so reading it with ``to_numpy`` or ``.item()`` starts no
    compute) and the pairs.
    """
    import array_api_compat
    import dask
    import dask.array

    found = list(found)
    lazy = [i for i, (x, grad) in enumerate(found)
            if array_api_compat.is_dask_array(grad)
            and not array_api_compat.is_dask_array(getattr(x, "data", grad))]
    values = computed_with_checks(root_value, dask.compute, *[found[i][1] for i in lazy])
    for i, value in zip(lazy, values[1:]):
        found[i] = (found[i][0], value)
    value = np.asarray(values[0])
    root = dask.array.from_array(value, chunks=value.shape)
    root._host_value = (root.name, value)  # the name: a later ``root[...] = x`` changes it
    return root, found


# A check of values that a Dask graph would have to compute first (a loss's probabilities in
# [0, 1], class labels in range) runs with the compute that needs them, not before: the name of
# the lazy result it guards -> (a weak reference to that result, [(a check, its lazy inputs),
# ...]). One array may carry several (a data set's finiteness and a metric's counts).
_CHECKS = {}


def check_when_computed(array, check, *values):
    """``check(*values)`` on the host values of ``values``: now for an eager array; for a Dask
    ``array``, inside the one compute that first computes ``array`` or anything made from it
    (``backward()``'s, ``ag.to_numpy``'s, ``.item()``'s), so checking costs no compute of its
    own. ``values`` are small lazy summaries (a min, a count), computed in that same pass over
    the chunks. ``check`` raises or warns, or takes the values (BatchNorm's running statistics,
    a metric's counts): every check given for one array runs, each once. An error stops the
    compute's caller, and is raised again by every later compute until the values are
    right."""
    if isinstance(array, np.ndarray) or not _compat().is_dask_array(array):
        check(*[to_numpy(value) for value in values])
        return
    for name, (alive, _) in list(_CHECKS.items()):  # forget the checks of dropped results
        if alive() is None:
            _CHECKS.pop(name, None)
    _CHECKS.setdefault(array.name, (weakref.ref(array), []))[1].append((check, values))


def computed_with_checks(array, compute, *more):
    """``compute(array, *more)`` with the pending checks of every result ``array`` is made
    from computed in the same call, then run on the host. The tasks run without numpy's
    floating-point warnings, as the engine's ops run on numpy (log(0) = -inf, x/0 = inf: the
    losses and the sentinel explain them); ``np.errstate`` is per thread and cannot reach
    Dask's workers, so here the warnings the tasks raise in this process are filtered."""
    graph = array.__dask_graph__()
    layers = getattr(graph, "layers", graph)
    pending = [(name, entry) for name, entry in list(_CHECKS.items()) if name in layers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="(divide by zero|overflow|underflow|invalid value) encountered")
        values = compute(array, *more, *[v for _, (_, checks) in pending
                                         for _, checked in checks for v in checked])
    start = 1 + len(more)
    for name, (_, checks) in pending:
        while checks:  # in order, each dropped once it ran: a later compute need not run it
            check, checked = checks[0]
            check(*[np.asarray(v) for v in values[start:start + len(checked)]])
            start += len(checked)
            del checks[0]
        _CHECKS.pop(name, None)
    return values[:1 + len(more)]


def padded(x, widths, value):
    """``x`` padded with ``value``, ``widths`` a (before, after) pair per axis."""
    if isinstance(x, np.ndarray):
        return np.pad(x, widths, constant_values=value)
    import array_api_extra as xpx
    return xpx.pad(x, widths, constant_values=value)


def windows(x, kernel, strides):
    """Every kh x kw window of images x (C, H, W, m) at ``strides`` (rows, columns), as
    (C, kh, kw, Ho, Wo, m): numpy's sliding windows (a view, copied once); elsewhere one
    strided slice per kernel offset, stacked (the standard has no sliding windows)."""
    sh, sw = strides
    if isinstance(x, np.ndarray):
        from numpy.lib.stride_tricks import sliding_window_view
        view = sliding_window_view(x, kernel, axis=(1, 2))[:, ::sh, ::sw]
        # (C, Ho, Wo, m, kh, kw) view -> (C, kh, kw, Ho, Wo, m), copied once, contiguous
        return np.ascontiguousarray(view.transpose(0, 4, 5, 1, 2, 3))
    xp = namespace(x)
    (kh, kw), (H, W) = kernel, x.shape[1:3]
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    return xp.stack([xp.stack([x[:, p:p + sh * (Ho - 1) + 1:sh,
                                 q:q + sw * (Wo - 1) + 1:sw, :] for q in range(kw)],
                              axis=1) for p in range(kh)], axis=1)


def flat_positions(shape, index) -> np.ndarray:
    """The flat positions ``x[index]`` reads, for an array of ``shape``, in the shape of the
    result (worked out by numpy on the host: an index is small beside the arrays)."""
    parts = index if isinstance(index, tuple) else (index,)
    host = tuple(to_numpy(part) if is_foreign_array(part) else part for part in parts)
    return np.arange(math.prod(shape)).reshape(shape)[host]


def device_of(array):
    return _compat().device(array)


def _on(xp, positions, like):
    return xp.asarray(positions, dtype=xp.int64, device=device_of(like))


