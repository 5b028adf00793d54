"""``import autograd_lite`` and a training step on ndarrays load only numpy and the engine: no
array backend (array-api-compat, Dask, torch, JAX, CuPy) and no picture library (graphviz)
until something asks for them. Checked by name in a fresh interpreter, never by timing."""
import os
import subprocess
import sys
import textwrap

import pytest

OPTIONAL = ("array_api_compat", "array_api_extra", "array_api_strict", "dask", "torch", "jax",
            "cupy", "graphviz", "matplotlib")


def _loaded_after(code: str) -> set:
    program = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(sorted({{name.split(".")[0] for name in sys.modules}} & set({OPTIONAL!r})))
        """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return set(eval(out.stdout.strip().splitlines()[-1]))


def test_importing_the_engine_loads_no_backend_and_no_picture_library():
    assert _loaded_after("import autograd_lite") == set()


def test_the_readme_step_on_ndarrays_loads_no_backend():
    assert _loaded_after("""
        import numpy as np
        import autograd_lite as ag
        rng = np.random.default_rng(0)
        X = ag.Tensor(rng.standard_normal((3, 5)))
        Y = ag.Tensor((rng.random((1, 5)) > 0.5) * 1.0)
        W1 = ag.Tensor(rng.standard_normal((4, 3)) * 0.01, requires_grad=True)
        b1 = ag.Tensor(np.zeros((4, 1)), requires_grad=True)
        W2 = ag.Tensor(rng.standard_normal((1, 4)) * 0.01, requires_grad=True)
        b2 = ag.Tensor(np.zeros((1, 1)), requires_grad=True)
        A2 = (W2 @ (W1 @ X + b1).sigmoid() + b2).sigmoid()
        J = -(Y * A2.log() + (1 - Y) * (1 - A2).log()).mean()
        J.backward()
        model = ag.nn.MLP([3, 4, 1])
        ag.optim.SGD(model.parameters(), lr=0.1).step()
        """) == set()


def test_draw_and_the_other_packages_load_when_asked_for():
    assert "graphviz" in _loaded_after("import autograd_lite as ag; ag.draw")
    assert _loaded_after("import autograd_lite as ag; ag.check, ag.viz, ag.cli") >= {"graphviz"}


def test_another_backend_loads_array_api_compat_when_its_array_shows_up():
    pytest.importorskip("array_api_strict")
    assert "array_api_compat" in _loaded_after("""
        import array_api_strict as xp
        import autograd_lite as ag
        ag.Tensor(xp.asarray([1.0, 2.0]))
        """)
