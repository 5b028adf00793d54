"""Compare autodiff with the hand derivation: gradcheck, compare, fused-vs-composed, sentinel.

- ``gradcheck(f, inputs)``: the engine's gradient of any function (a custom primitive too)
  against central finite differences, first or second order, per element or along random
  directions.
- ``compare(W, b, X, Y, activations, loss)``: one network's dA, dZ, dW, db (eqs 77-84) three
  ways — autodiff, ``autograd_lite.reference`` (the hand derivation), finite differences — per
  layer in backward order, naming the first quantity where they part.
- ``compare_model(model, X, Y, loss)``: the same for an ``nn.MLP`` / ``nn.Sequential``, with the
  model's own forward pass as the autodiff way.
- ``compare_derivation(J, hand)``: any hand derivation of any recorded loss J (BatchNorm's
  backward, a conv layer's dW, your own layer's), keyed by the graph's tensors or names
  (``{"dZ[1]": ..., "dW[1]": ...}``), against autodiff and finite differences, in backward
  order, naming the first quantity where it parts.
- ``fused_vs_composed()``: the composed log-loss (eq 1 written with log of ``sigmoid(Z)``) and
  the fused ``binary_cross_entropy_with_logits(Z, Y)``: where they agree, where and why they
  part at saturation.
- ``sentinel()``: a context manager that reports saturated sigmoids, logs of values <= 0, exp
  overflows and NaN/Inf origins, with the tensor's name and the operation, as they happen.
"""

from .compare import Comparison, compare
from .derivation import DerivationComparison, compare_derivation
from .model import compare_model
from .fused import FusedComparison, fused_vs_composed
from .gradcheck import GradcheckResult, PrecisionWarning, gradcheck
from .sentinel import NonFiniteWarning, Sentinel, SentinelError, sentinel

__all__ = ["gradcheck", "GradcheckResult", "PrecisionWarning", "compare", "Comparison", "compare_model",
           "compare_derivation", "DerivationComparison",
           "fused_vs_composed", "FusedComparison", "sentinel", "Sentinel", "SentinelError",
           "NonFiniteWarning"]
