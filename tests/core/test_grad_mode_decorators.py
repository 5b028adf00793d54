"""``no_grad`` and ``enable_grad`` as decorators, with and without parentheses (as in PyTorch 2).

``@ag.no_grad`` and ``@ag.no_grad()`` both give a function that records nothing in the thread
that calls it (a parameter update, eq 74, is the usual case), restores the previous mode when it
returns or raises, keeps the wrapped function's name and docstring, and works on methods.
``with ag.no_grad():`` is tested in test_engine.py.
"""
import re
import threading
import types

import pytest

import autograd_lite as ag


def _decorate(context, spelling, function):
    """``@context`` or ``@context()`` applied to ``function``."""
    return context(function) if spelling == "@context" else context()(function)


SPELLINGS = ["@context", "@context()"]


def _mode_and_recording(W):
    """What the body of a decorated function sees: grad mode, and whether an op records."""
    return ag.is_grad_enabled(), (W * 2).requires_grad


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_grad_decorated_function_records_nothing_and_restores_the_mode(spelling):
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True)
    update = _decorate(ag.no_grad, spelling, _mode_and_recording)
    assert isinstance(update, types.FunctionType)        # a function, not a context object
    assert update(W) == (False, False)
    assert ag.is_grad_enabled()
    with ag.no_grad():                                   # restores "off" as well as "on"
        assert update(W) == (False, False)
        assert not ag.is_grad_enabled()


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_enable_grad_decorated_function_records_inside_no_grad(spelling):
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True)
    record = _decorate(ag.enable_grad, spelling, _mode_and_recording)
    assert isinstance(record, types.FunctionType)
    with ag.no_grad():
        assert record(W) == (True, True)
        assert not ag.is_grad_enabled()
    assert record(W) == (True, True)
    assert ag.is_grad_enabled()


def test_a_no_grad_function_calling_an_enable_grad_function_records_inside_it():
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True)
    seen = []

    @ag.enable_grad
    def inner():
        seen.append(("inner", *_mode_and_recording(W)))
        return W * 3

    @ag.no_grad
    def outer():
        seen.append(("outer before", *_mode_and_recording(W)))
        Z = inner()
        seen.append(("outer after", *_mode_and_recording(W)))
        return Z

    Z = outer()
    assert seen == [("outer before", False, False), ("inner", True, True),
                    ("outer after", False, False)]
    assert Z.requires_grad and ag.is_grad_enabled()
    Z.sum().backward()                                   # the inner graph is a real graph
    assert W.grad.tolist() == [[3.0, 3.0]]


@pytest.mark.parametrize("context, mode_inside", [(ag.no_grad, False), (ag.enable_grad, True)])
@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("mode_outside", [True, False])
def test_the_mode_is_restored_when_the_function_raises(context, mode_inside, spelling,
                                                        mode_outside):
    seen = []

    def fails():
        seen.append(ag.is_grad_enabled())
        raise KeyError("inside")

    decorated = _decorate(context, spelling, fails)
    outside = ag.enable_grad() if mode_outside else ag.no_grad()
    with outside:
        with pytest.raises(KeyError, match="inside"):
            decorated()
        assert ag.is_grad_enabled() is mode_outside
    assert seen == [mode_inside]
    assert ag.is_grad_enabled()


@pytest.mark.parametrize("context", [ag.no_grad, ag.enable_grad])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_decorated_function_keeps_its_name_docstring_and_arguments(context, spelling):
    def update(W, dW, alpha=0.1):
        """W := W - alpha dW (eq 74)."""
        return W - alpha * dW

    decorated = _decorate(context, spelling, update)
    assert decorated.__name__ == "update"
    assert decorated.__doc__ == "W := W - alpha dW (eq 74)."
    assert decorated.__qualname__ == update.__qualname__
    assert decorated.__wrapped__ is update
    assert decorated(1.0, 2.0, alpha=0.5) == 0.0


def test_methods_of_a_class_can_be_decorated_either_way():
    class Layer:
        def __init__(self):
            self.W = ag.Tensor([[1.0, 2.0]], requires_grad=True)

        @ag.no_grad
        def step(self, alpha):
            """Eq 74 on this layer's W, unrecorded."""
            W_new = self.W - alpha
            self.W = ag.Tensor(W_new.data, requires_grad=True)
            return ag.is_grad_enabled(), W_new.requires_grad

        @ag.no_grad()
        def peek(self):
            return _mode_and_recording(self.W)

        @ag.enable_grad
        def forward(self, A):
            return self.W * A

    layer = Layer()
    assert layer.step(0.5) == (False, False)
    assert layer.W.data.tolist() == [[0.5, 1.5]]
    assert layer.peek() == (False, False)
    assert Layer.step.__name__ == "step" and Layer.step.__doc__.startswith("Eq 74")
    with ag.no_grad():
        assert layer.forward(2.0).requires_grad
    assert ag.is_grad_enabled()


@pytest.mark.parametrize("context", [ag.no_grad, ag.enable_grad])
@pytest.mark.parametrize("argument, shown", [(3, "int 3"), ("W", "str 'W'"),
                                             (ag.Tensor(1.0), "Tensor")])
def test_an_argument_that_is_not_a_function_is_a_type_error_naming_it(context, argument, shown):
    name = context.__name__
    with pytest.raises(TypeError, match=rf"^{name}\(\) takes a function .*got {re.escape(shown)}"):
        context(argument)
    assert ag.is_grad_enabled()


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("context, main_mode", [(ag.no_grad, True), (ag.enable_grad, False)])
def test_a_decorated_function_in_another_thread_leaves_this_threads_mode(spelling, context,
                                                                         main_mode):
    W = ag.Tensor([[1.0, 2.0]], requires_grad=True)
    worker_inside, main_done = threading.Event(), threading.Event()
    seen = {}

    def body():
        worker_inside.set()
        assert main_done.wait(10)                        # hold the worker inside the function
        return _mode_and_recording(W)

    decorated = _decorate(context, spelling, body)

    def worker():
        seen["worker"] = decorated()

    main_context = ag.enable_grad() if main_mode else ag.no_grad()
    with main_context:
        thread = threading.Thread(target=worker)
        thread.start()
        assert worker_inside.wait(10)
        seen["main"] = _mode_and_recording(W)            # while the worker is inside
        main_done.set()
        thread.join(10)
        assert not thread.is_alive()
        seen["main after"] = ag.is_grad_enabled()
    assert seen == {"worker": (not main_mode, not main_mode), "main": (main_mode, main_mode),
                    "main after": main_mode}


# --- generators and coroutines: the mode holds inside every resumption ------

def test_no_grad_on_a_generator_sets_the_mode_around_each_resumption():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    seen = []

    @ag.no_grad
    def steps():
        for _ in range(3):
            seen.append(ag.is_grad_enabled())
            received = yield (x * 2).requires_grad
            seen.append(received)

    generator = steps()
    assert next(generator) is False            # recorded nothing inside
    assert ag.is_grad_enabled()                # and the caller's mode is untouched between
    assert (x * 2).requires_grad
    assert generator.send("a") is False
    assert list(generator) == [False]
    assert seen == [False, "a", False, None, False, None]
    assert ag.is_grad_enabled()


def test_no_grad_on_a_generator_passes_thrown_errors_and_return_values():
    @ag.no_grad
    def steps():
        try:
            yield ag.is_grad_enabled()
        except KeyError:
            yield ("caught", ag.is_grad_enabled())
        return "done"

    generator = steps()
    assert next(generator) is False
    assert generator.throw(KeyError("k")) == ("caught", False)
    with pytest.raises(StopIteration) as stop:
        next(generator)
    assert stop.value.value == "done"
    assert ag.is_grad_enabled()


def test_no_grad_on_a_coroutine_sets_the_mode_inside_and_restores_it_between_awaits():
    import asyncio
    x = ag.Tensor([1.0], requires_grad=True)
    modes = []

    @ag.no_grad
    async def evaluate():
        modes.append(ag.is_grad_enabled())
        await asyncio.sleep(0)
        modes.append(ag.is_grad_enabled())
        return (x * 3).requires_grad

    async def other():
        modes.append(("other", ag.is_grad_enabled()))

    async def main():
        results = await asyncio.gather(evaluate(), other())
        return results[0]

    assert asyncio.run(main()) is False
    assert modes[0] is False and modes[-1] is False
    assert ("other", True) in modes             # the other task kept its own mode
    assert ag.is_grad_enabled()


def test_no_grad_refuses_an_async_generator_with_the_way_out():
    async def stream():
        yield 1
    with pytest.raises(TypeError, match="async generator"):
        ag.no_grad(stream)
