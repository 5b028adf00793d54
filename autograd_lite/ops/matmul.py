"""The matrix product ``W A`` (eqs 21, 26, 33) and its vjp ``dW = dZ Aᵀ``, ``dA = Wᵀ dZ``
(eqs 59, 65, 79-83)."""
from __future__ import annotations

from ..errors import ShapeError
from .base import Primitive, reshape

# --- matrix product ---------------------------------------------------------------------------

def _misaligned(x_shape, y_shape) -> ShapeError:
    """The error for ``x @ y`` of shapes that are not 1-D or 2-D, or do not align."""
    if not x_shape or not y_shape:
        return ShapeError(f"matmul: operands must be 1-D or 2-D, got a scalar "
                          f"(shapes {x_shape} and {y_shape}); use * to scale")
    if len(x_shape) > 2 or len(y_shape) > 2:
        return ShapeError(f"matmul: operands must be 1-D or 2-D, got shapes {x_shape} and {y_shape}")
    inner_x, inner_y = x_shape[-1], y_shape[0]
    hint = ""
    if len(x_shape) == 2 and len(y_shape) == 2 and y_shape[1] == inner_x:
        # The most common slip with the seed's layout: X given with samples as rows.
        hint = (f"; the second operand's rows have {inner_x} entries: if it holds "
                f"samples as rows, transpose it (samples are columns, eq 25)")
    return ShapeError(f"matmul: shapes {x_shape} and {y_shape} do not align "
                      f"({inner_x} != {inner_y}){hint}")


def _matmul_vjp_of_vectors(g, x, y, wants):
    """Matmul's vjp when an operand is 1-D: a 1-D left operand is a row (1, k), a 1-D right
    operand a column (k, 1), so dW = dZ A^T and dA = W^T dZ hold as for matrices."""
    x2 = reshape(x, (1, -1)) if x.ndim == 1 else x
    y2 = reshape(y, (-1, 1)) if y.ndim == 1 else y
    g2 = reshape(g, (x2.shape[0], y2.shape[1]))
    grad_x = reshape(g2 @ y2.T, x.shape) if wants[0] else None
    grad_y = reshape(x2.T @ g2, y.shape) if wants[1] else None
    return grad_x, grad_y


class MatMul(Primitive):
    """``x @ y`` for 2-D and 1-D operands as numpy defines them (eqs 21, 26, 33: ``W A``).

    A 1-D left operand is a row, a 1-D right operand a column; the vjp promotes them the same
    way, so dW = dZ A^T (eqs 59, 79, 83) and dA = W^T dZ (eqs 65, 81) come from the one rule.
    """
    name = "matmul"
    vjp_reads_output = False  # dW = dZ A^T, dA = W^T dZ (eqs 79-83)

    def forward(self, x, y):
        if x.ndim in (1, 2) and y.ndim in (1, 2) and x.shape[-1] == y.shape[0]:
            return x @ y
        raise _misaligned(x.shape, y.shape)

    def vjp(self, g, inputs, output, wants):
        x, y = inputs
        if x.ndim == 1 or y.ndim == 1:
            return _matmul_vjp_of_vectors(g, x, y, wants)
        return (g @ y.T if wants[0] else None,   # dW = dZ A^T (eqs 59, 79, 83)
                x.T @ g if wants[1] else None)   # dA = W^T dZ (eqs 65, 81)

    def formula(self, i, g, names, params, input_shapes):
        x, y, out = names
        return f"{g}·{y}ᵀ" if i == 0 else f"{x}ᵀ·{g}"


MATMUL = MatMul()
