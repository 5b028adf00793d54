"""Observers of the engine, per thread: how the saturation sentinel, ``check.compare_model`` and
``ag.compile`` see every op without the engine knowing about them.

``forward_hooks``: each is called as ``hook(op, inputs, output)`` after every recorded forward
op; ``backward_hooks``: ``hook(node, input_grads)`` after every vjp in backward. They are per
thread, like grad mode: a sentinel or a trace in one thread never sees another thread's ops,
and a hook added in one thread is never called from another. Each reads as a list of this
thread's hooks (``append``, ``remove``, ``len``, iteration). What the engine loops over is a
tuple (``per_thread.modes.forward``), so a hook that removes itself while it is called changes
nothing mid-loop.
"""
from __future__ import annotations

from collections.abc import MutableSequence

from .modes import per_thread


class HookList(MutableSequence):
    """This thread's hooks of one kind (``"forward"`` or ``"backward"``), as a list."""

    def __init__(self, kind: str):
        self.kind = kind

    def _hooks(self) -> tuple:
        return getattr(per_thread.modes, self.kind)

    def _replace(self, hooks) -> None:
        setattr(per_thread.modes, self.kind, tuple(hooks))

    def __getitem__(self, index):
        return self._hooks()[index]

    def __setitem__(self, index, hook):
        hooks = list(self._hooks())
        hooks[index] = hook
        self._replace(hooks)

    def __delitem__(self, index):
        hooks = list(self._hooks())
        del hooks[index]
        self._replace(hooks)

    def __len__(self):
        return len(self._hooks())

    def insert(self, index, hook):
        hooks = list(self._hooks())
        hooks.insert(index, hook)
        self._replace(hooks)

    def __repr__(self):
        return f"<{self.kind} hooks of this thread: {list(self._hooks())!r}>"


forward_hooks = HookList("forward")
backward_hooks = HookList("backward")
