"""JAX computes in float32 unless its 64-bit mode is on: a Tensor of JAX data is then refused
unless a dtype is given, saying how to switch the mode on; with a float32 dtype the engine runs
and keeps float32. In a fresh interpreter: the mode is global to a process, and the backend
tests switch it on (tests/array_backends.py)."""
import os
import subprocess
import sys
import textwrap

import pytest


def test_jax_without_64_bit_mode_is_refused_unless_a_dtype_is_given():
    pytest.importorskip("jax", reason="JAX is not installed here (the `jax` extra)")
    program = textwrap.dedent("""
        import jax.numpy as jnp
        import autograd_lite as ag
        try:
            ag.Tensor(jnp.ones((2, 3)))
        except TypeError as error:
            print("refused:", error)
        t = ag.Tensor(jnp.ones((2, 3)), dtype=jnp.float32, requires_grad=True)
        (t * t).sum().backward()
        print("grad:", t.grad.dtype, float(t.grad.sum()))
        """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
                                          "JAX_ENABLE_X64": "0"})
    refused, grad = out.stdout.strip().splitlines()
    assert refused.startswith("refused: Tensor: JAX computes in float32 unless jax_enable_x64")
    assert "dtype=jax.numpy.float32" in refused and "jax.config.update" in refused
    assert grad == "grad: float32 12.0"
