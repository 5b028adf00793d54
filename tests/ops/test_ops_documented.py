"""Every primitive beyond the seed's own has its own formula for pictures and is documented in
docs/ops.md; every ag function of those modules is documented there too (a guard against an op
added without its row)."""
import inspect
import pathlib

import pytest

import autograd_lite as ag
from autograd_lite.ops import elementwise as ops_elementwise, reduce as ops_reduce, shape as ops_join
from autograd_lite.nn import conv

MODULES = (ops_reduce, ops_elementwise, ops_join, conv)
DOC = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "ops.md").read_text()


def primitives():
    found = {}
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, ag.Primitive) and type(value).__module__ == module.__name__:
                found[value.name] = value
    return found


def test_the_modules_hold_the_primitives_docs_ops_md_lists():
    assert set(primitives()) >= {"max", "min", "logsumexp", "var", "maximum", "minimum", "clip",
                                 "square", "sqrt", "sin", "cos", "leaky_relu", "elu", "gelu",
                                 "softplus", "normal_cdf", "concatenate", "stack", "where",
                                 "im2col", "col2im"}


@pytest.mark.parametrize("name", sorted(primitives()))
def test_each_primitive_has_its_own_formula_and_a_row_in_docs(name):
    primitive = primitives()[name]
    assert type(primitive).formula is not ag.Primitive.formula, f"{name} prints no formula"
    assert f"`{name}" in DOC or f"{name}(" in DOC or f"`{name}`" in DOC, f"{name} is not in docs/ops.md"


@pytest.mark.parametrize("module", MODULES[:3], ids=lambda m: m.__name__)
def test_each_function_is_an_ag_function_and_documented(module):
    for name in module.__all__:
        assert inspect.isfunction(getattr(ag, name)), f"ag.{name} is missing"
        assert f"`{name}(" in DOC, f"{name} is not in docs/ops.md"
        assert name not in ("max", "min", "abs") or name not in ag.__all__
