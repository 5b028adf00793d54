"""Pictures of computation graphs, drawn so a learner can follow the seed's derivation on them.

``draw(J)`` walks the graph behind a tensor and returns a ``GraphPicture``: tensor boxes carry
the user's name in the seed's notation (``W[1]``, ``Z[1]``, ``A[1]``, ``J``) and the shape
(``4×3``; ``4×m`` where the axis holds the m samples, eq 25), operation ellipses the primitive's
name and the equation it carries out (matmul: eq 33; sigmoid: eq 7; mean: eq 76). Tensors made
inside ``ag.name_scope("layer 1")`` are grouped in a labelled cluster.

    >>> import numpy as np, autograd_lite as ag
    >>> from autograd_lite.viz import draw
    >>> W = ag.Tensor(np.ones((4, 3)), requires_grad=True, name="W[1]")
    >>> X = ag.Tensor(np.ones((3, 5)), name="X")
    >>> picture = draw((W @ X).sigmoid().mean())
    >>> "4×m" in picture.source and "matmul" in picture.source
    True

Draw before ``backward()`` (it frees the graph), or call ``backward(retain_graph=True)``; to
show gradients of intermediates (dZ[l], dA[l]) call ``retain_grad()`` on them before backward.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.tensor import Tensor
from . import differences, emit, layers, model as _model
from .picture import FORMATS, GraphPicture, GraphvizNotFoundError, key_table
from .walk import display_names, host_values, sample_axes, walk

DEFAULT_MAX_NODES = 400
COLORS = (None, "grad", "compare")


@dataclass(frozen=True)
class _Options:
    values: bool
    grads: bool
    max_elements: int


def draw(root, *, backward=False, values=False, grads=False, color=None, compare=None,
         tolerance=1e-6, layers_only=False, clusters=True, samples="auto",
         max_nodes=DEFAULT_MAX_NODES, max_elements=16, rankdir="TB") -> GraphPicture:
    """The picture of the graph behind ``root`` (any Tensor; usually the loss J).

    - ``backward``: draw the backward flow instead: one box per gradient (dJ, dA[2], dZ[2],
      dW[2], ...), each operation's vjp, and edges labelled with the local rule, e.g.
      ``dW[1] = dZ[1]·Xᵀ`` (eqs 79, 83). The product ``W[1]·X`` feeds only the add of
      ``b[1]``, whose vjp passes the gradient on unchanged, so d(W[1]·X) is dZ[1]: its box and
      edge say so, and the rules below it use the seed's name. An input that was broadcast gets
      its own un-broadcast node: ``db[1] = Σ over axis 1 of dZ[1]`` (eq 80). A gradient fed by
      several uses shows ``+=`` and "sum of n contributions".
    - ``values`` / ``grads``: print each tensor's value / gradient inside its box, in full when
      it has at most ``max_elements`` elements, else as min · mean · max.
    - ``color="grad"``: fill tensor boxes by max |grad| on a log scale (pale small, dark large).
    - ``compare``: the hand derivation against autodiff, per gradient. Either the report of
      ``autograd_lite.check.compare`` (its own verdicts decide agreement, so the picture says
      what the report says, and ``tolerance`` is not used), or a mapping from tensor name to
      the relative difference (``{"dW[1]": 3e-16, "db[1]": 0.2}``; "W[1]" and "dW[1]" both
      name W[1]'s gradient; None: the hand derivation has no value), judged by ``tolerance``.
      Boxes turn green where they agree, red where they differ, grey where the hand derivation
      has no value; the first red one in backward order (the report's rows, else nearest the
      root) gets a thick border: that is where the two derivations part. Giving ``compare``
      implies ``color="compare"``.
    - ``clusters``: group tensors by ``ag.name_scope`` (default True). A graph without any scope
      is grouped by the seed's names instead (W[1], b[1], Z[1], A[1] -> "layer 1").
    - ``layers_only``: collapse each layer to one box (its parameters, operations, results),
      for big networks. A graph with no layers at all is drawn in full, and a note says so.
      Under a colouring, a layer box takes the fill of its worst member (``grad``: the largest
      max |grad|, and it names the smallest too; ``compare``: the first to differ, else the
      largest difference) and says which member that is.
    - ``samples``: where the sample axis m starts: "auto" (the last axis of leaves named X, Y
      or A[0]), an int m (the last axis of every input leaf of that length), a list of tensors
      or names, or None. m then follows the operations, so parameters never show it.
    - ``max_nodes``: the size policy. Past it, the picture collapses to layers if there are
      any, and if still too big keeps the nodes nearest the root and one "… n more nodes"
      node; ``picture.notes`` and the caption say what happened. None: no limit.
    - ``rankdir``: Graphviz direction, "TB" (top to bottom, default) or "LR", "BT", "RL".
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"draw: expected a Tensor (such as the loss J), got {type(root).__name__}")
    if color not in COLORS:
        raise ValueError(f"draw: color must be one of {COLORS}, got {color!r}")
    if compare is not None:
        compare = differences.read(compare, tolerance)
        color = "compare" if color is None else color
    if color == "compare" and compare is None:
        raise ValueError("draw: color='compare' needs compare=, a mapping from tensor name to "
                         "relative difference (e.g. {'dW[1]': 1e-15})")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int)
                                  or max_nodes < 2):
        raise ValueError(f"draw: max_nodes must be an int of at least 2, or None, got {max_nodes!r}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")

    if backward and not root.requires_grad:
        raise ValueError(f"draw(backward=True): {root.name or 'the tensor'!r} does not require a "
                         f"gradient (nothing it was computed from has requires_grad=True, or it "
                         f"was computed under no_grad()), so there is no backward flow to draw")
    graph, names, flags, scopes, scope_source = prepare(root, samples, clusters, values)
    options = _Options(bool(values), bool(grads), int(max_elements))
    picture = build_model(graph, names, flags, scopes, options, backward, color, compare)

    total = len(picture.nodes)
    if layers_only:
        if scope_source is None or not clusters:
            picture.notes.append("layers only: this graph has no layers (no ag.name_scope and no "
                                 "seed names such as W[1]), so every node is drawn")
        else:
            picture = layers.collapse(picture)
    if max_nodes is not None and len(picture.nodes) > max_nodes:
        if not layers_only and scope_source is not None and clusters:
            picture = layers.collapse(picture)
            picture.notes.append(f"{total} nodes is more than max_nodes={max_nodes}: each layer "
                                 f"is collapsed to one box (pass layers_only=True to ask for this, "
                                 f"or a larger max_nodes to draw every node)")
        if len(picture.nodes) > max_nodes:
            before = len(picture.nodes)
            picture = layers.truncate(picture, max_nodes)
            picture.notes.append(f"{before} nodes is more than max_nodes={max_nodes}: the "
                                 f"{max_nodes - 1} nearest the root are drawn, the rest are "
                                 f"counted in one '… more nodes' box")

    caption = caption_lines(picture, graph, flags, scope_source if clusters else None)
    digraph = emit.to_digraph(picture, rankdir=rankdir, caption=caption)
    page = dict(compare=compare, samples=samples, clusters=clusters, rankdir=rankdir)
    return GraphPicture(digraph, picture.notes, "backward" if backward else "forward",
                        key_table(graph, picture), root=root, page=page)


def prepare(root, samples="auto", clusters=True, values=False, graph=None):
    """What every view of ``root`` starts from: the walk, display names, sample axes, scopes
    (and where the scopes came from: "name_scope", "seed names" or None). ``values``: the view
    shows values, so they are brought to the host now, once (``walk.host_values``), and the
    names may read them too; without, a Dask graph is drawn by shape, computing nothing.
    ``graph``: the walk of ``root`` when the caller has made it already."""
    graph = walk(root) if graph is None else graph
    if values:
        host_values(graph)
    names = display_names(graph)
    flags = sample_axes(graph, samples, names)
    scopes, scope_source = layers.scopes_for(graph, names)
    if not clusters:
        scopes = [()] * len(graph.tensors)
    return graph, names, flags, scopes, scope_source


def build_model(graph, names, flags, scopes, options, backward, color=None, compare=None):
    """The forward or backward picture model, coloured as ``color`` says (``compare``: the
    ``differences.read`` of a report or mapping)."""
    build = _model.build_backward if backward else _model.build_forward
    picture = build(graph, names, flags, scopes, options)
    if color == "grad":
        _model.colour_by_gradient(picture, graph, names)
    elif color == "compare":
        _model.colour_by_comparison(picture, graph, compare, names)
    return picture


def caption_lines(picture, graph, flags, scope_source):
    """What is written under a picture: its notes and legend, m, where the layers came from."""
    caption = list(picture.notes) + list(picture.legend)
    m = _sample_size(graph, flags)
    if m is not None:
        caption.insert(0, f"m = {m} samples (the columns, eq 25)")
    if scope_source == "seed names":
        caption.append("layers inferred from the seed's names (W[l], b[l], Z[l], A[l])")
    return caption


def _sample_size(graph, flags):
    for tensor, flag in zip(graph.tensors, flags):
        for axis, is_sample in enumerate(flag):
            if is_sample:
                return tensor.shape[axis]
    return None


__all__ = ["draw", "GraphPicture", "GraphvizNotFoundError", "FORMATS"]
