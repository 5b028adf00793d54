"""A CNN on ndarrays (conv, pooling, BatchNorm in both modes), Embedding, argmax and the
comparisons compute with numpy's own functions: a step loads no array backend (array-api-compat,
the namespace of other backends, is imported only when another backend's array shows up).
Checked by module name in a fresh interpreter, never by timing."""
import os
import subprocess
import sys
import textwrap

PROGRAM = """
import sys
import numpy as np
import autograd_lite as ag
from autograd_lite import nn

X = np.random.default_rng(0).standard_normal((2, 4, 4, 5))
model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2, padding=1),
                      nn.BatchNorm(3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(3, 4, rng=0))
ag.softmax_cross_entropy(model(X), np.eye(4)[:, [0, 1, 2, 3, 0]]).backward()
model.eval()
model(X)
table = nn.Embedding(5, 2, rng=0)
table(np.array([0.0, 1.0]))
table(ag.Tensor(np.array([1, 2]), dtype=np.int64)).sum().backward()
t = ag.Tensor(X)
t.argmax(axis=0), ag.argmin(t), t > 0
print(sorted({name.split(".")[0] for name in sys.modules} & {"array_api_compat", "array_api_extra"}))
"""


def test_a_cnn_an_embedding_and_argmax_on_ndarrays_load_no_array_backend():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(PROGRAM)], capture_output=True,
                         text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip().splitlines()[-1] == "[]"
