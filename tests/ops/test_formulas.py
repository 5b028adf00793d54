"""Each primitive's vjp formula (for the backward pictures) lives beside its vjp, in ops."""
import inspect

import numpy as np

import autograd_lite as ag
from autograd_lite import ops


def builtin_primitives():
    return [value for value in vars(ops).values() if isinstance(value, ops.Primitive)]


def test_every_builtin_primitive_writes_its_own_formula():
    for primitive in builtin_primitives():
        assert type(primitive).formula is not ops.Primitive.formula, primitive.name


def test_formulas_read_like_the_seed():
    assert ops.SIGMOID.formula(0, "dA[1]", ("Z[1]", "A[1]"), {}, ((4, 5),)) == "dA[1] ∘ A[1](1 − A[1])"
    assert ops.MATMUL.formula(0, "dZ[1]", ("W[1]", "X", "Z[1]"), {}, ((4, 3), (3, 5))) == "dZ[1]·Xᵀ"
    assert ops.MATMUL.formula(1, "dZ[2]", ("W[2]", "A[1]", "Z[2]"), {}, ((1, 4), (4, 5))) == "W[2]ᵀ·dZ[2]"
    assert ops.MEAN.formula(0, "dJ", ("L", "J"), {"axis": (1,)}, ((1, 5),)) == "dJ repeated over axis 1, / 5"


class Cube(ag.Primitive):
    name = "cube"

    def forward(self, x):
        return x ** 3

    def vjp(self, g, inputs, output, wants):
        return (g * 3 * inputs[0] ** 2,)

    def formula(self, i, g, names, params, input_shapes):
        return f"{g} ∘ 3·{names[0]}²"


class Square(ag.Primitive):  # no formula: the picture falls back to a generic one
    name = "square"

    def forward(self, x):
        return x ** 2

    def vjp(self, g, inputs, output, wants):
        return (g * 2 * inputs[0],)


def test_a_custom_primitive_shows_its_formula_in_the_backward_picture():
    x = ag.Tensor(np.ones((2, 2)), requires_grad=True, name="x")
    J = (Cube()(x).sum() + Square()(x).sum()).named("J")
    source = ag.draw(J, backward=True).source
    assert "∘ 3·x²" in source
    assert "vjp of square applied to" in source


def test_the_formula_signature_is_documented_on_the_base_class():
    assert "input_shapes" in inspect.signature(ops.Primitive.formula).parameters
    assert "Override it beside your" in ops.Primitive.formula.__doc__
