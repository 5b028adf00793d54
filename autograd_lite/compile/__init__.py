"""``ag.compile``: trace a training step, check that its graph does not change, and replay it
as one generated function of numpy calls into buffers allocated once (``trace``: tracing and
checking, and what a step may read; ``replay``: writing the program out; ``kernels``: what each
primitive becomes in it; ``memory``: which buffers share an array)."""
from .trace import GraphChangedError, Program, Tape, UncompilableError, compile  # noqa: A004

__all__ = ["compile", "Tape", "Program", "GraphChangedError", "UncompilableError"]
