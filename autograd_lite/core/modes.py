"""Grad mode (``no_grad``, ``enable_grad``), name scopes and the observers of every op: per
thread, as in PyTorch.

``no_grad()`` in one thread never stops another from recording; tensors made inside
``with ag.name_scope("layer 1"):`` remember the scope, so pictures can group them.
"""
from __future__ import annotations

import functools
import inspect
import threading


class Modes:
    """One thread's modes, as plain attributes: the engine reads ``per_thread.modes`` once per
    op (a thread-local read costs several plain ones), then these.

    - ``enabled``: operations are recorded (``no_grad`` sets it False, ``enable_grad`` True);
    - ``trace``: the ag.compile trace running in this thread (compile.trace.Trace), else None.
      While set, an op on constants records its node too (its result still needs no gradient)
      and tells the trace, so the trace sees every op of the step; a value leaving the graph is
      refused;
    - ``scope``: the active name scopes, outermost first (``name_scope``);
    - ``forward``, ``backward``: this thread's observers of every op, tuples (``core.hooks``).
    """

    def __init__(self):
        self.enabled, self.trace, self.scope, self.forward, self.backward = True, None, (), (), ()


class _PerThread(threading.local):
    def __init__(self):  # runs in each thread the first time it reads per_thread
        self.modes = Modes()


per_thread = _PerThread()


class _ThisThreadsModes:
    """``grad_mode.enabled``, ``grad_mode.trace``: this thread's (``per_thread.modes``)."""

    def __getattr__(self, name):
        return getattr(per_thread.modes, name)

    def __setattr__(self, name, value):
        setattr(per_thread.modes, name, value)


grad_mode = _ThisThreadsModes()


def is_grad_enabled() -> bool:
    """True when operations are recorded in this thread (the default)."""
    return per_thread.modes.enabled


class _GradModeContext:
    """Context manager and decorator that sets this thread's grad mode, restoring it after.

    Three spellings, as in PyTorch 2: ``with ag.no_grad():``, ``@ag.no_grad()`` and
    ``@ag.no_grad``. A decorated function sets the mode on every call, and restores the previous
    mode when it returns or raises. A decorated generator or ``async def`` function has the mode
    set around each resumption (each ``next``/``send``/``await`` step), as PyTorch does, so code
    between two resumptions keeps its own mode.
    """

    enabled = True

    def __new__(cls, function=None):
        # `@ag.no_grad` without parentheses calls the class with the function itself.
        if function is None:
            return super().__new__(cls)
        if not callable(function):
            raise TypeError(f"{cls.__name__}() takes a function to decorate or nothing, "
                            f"got {type(function).__name__} {function!r}")
        return cls()(function)

    def __enter__(self):
        modes = per_thread.modes
        self._previous, modes.enabled = modes.enabled, self.enabled
        return self

    def __exit__(self, *exc_info):
        per_thread.modes.enabled = self._previous
        return False

    def __call__(self, function):
        mode = type(self)
        if inspect.isgeneratorfunction(function):
            @functools.wraps(function)
            def generator(*args, **kwargs):
                inner = function(*args, **kwargs)
                to_send = None
                while True:
                    try:
                        with mode():
                            item = inner.send(to_send)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        inner.close()
                        raise
                    except BaseException as error:  # thrown in: pass it on under the mode
                        with mode():
                            try:
                                item = inner.throw(error)
                            except StopIteration as stop:
                                return stop.value
                        to_send = yield item
            return generator
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def coroutine(*args, **kwargs):
                return await _ModeAwaitable(function(*args, **kwargs), mode)
            return coroutine
        if inspect.isasyncgenfunction(function):
            raise TypeError(f"{mode.__name__}: cannot decorate the async generator "
                            f"{function.__qualname__}; use `with ag.{mode.__name__}():` inside it")

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with mode():  # a fresh context per call: `_previous` is never shared
                return function(*args, **kwargs)
        return wrapper


class _ModeAwaitable:
    """Runs a coroutine with the grad mode set around each of its steps."""

    def __init__(self, coroutine, mode):
        self.coroutine, self.mode = coroutine, mode

    def __await__(self):
        to_send, error = None, None
        while True:
            with self.mode():
                try:
                    step = (self.coroutine.throw(error) if error is not None
                            else self.coroutine.send(to_send))
                except StopIteration as stop:
                    return stop.value
            to_send, error = None, None
            try:
                to_send = yield step
            except BaseException as thrown:  # noqa: B036 - passed on to the coroutine
                error = thrown


class no_grad(_GradModeContext):
    """``with ag.no_grad(): ...`` records nothing (evaluation, parameter updates, eq 74).

    It applies to the current thread only. Also a decorator, with or without parentheses.
    """

    enabled = False


class enable_grad(_GradModeContext):
    """Turns recording back on inside a ``no_grad`` block (used by ``ag.grad``). Per thread;
    also a decorator."""

    enabled = True


# --- name scopes ------------------------------------------------------------------------------
# Tensors made inside `with ag.name_scope("layer 1"):` remember the scope, so pictures can group
# them (viz) and reports can say where a tensor lives.

def current_scope():
    """The innermost active name scope of this thread as a tuple of names, e.g. ('layer 1',)."""
    return per_thread.modes.scope


class name_scope:
    """``with ag.name_scope("layer 1"): ...``: tensors made inside belong to that scope.

    Scopes nest (``('model', 'layer 1')``). They change no value and no gradient.
    """

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name_scope: the name must be a non-empty string, got {name!r}")
        self.name = name

    def __enter__(self):
        modes = per_thread.modes
        self._previous, modes.scope = modes.scope, modes.scope + (self.name,)
        return self

    def __exit__(self, *exc_info):
        per_thread.modes.scope = self._previous
        return False
