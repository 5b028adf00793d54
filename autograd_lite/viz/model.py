"""The picture as plain data: nodes and edges for the forward or the backward view.

Building a model first, and a ``graphviz.Digraph`` from it only at the end (``emit``), lets the
size policy and the "layers only" view (``layers``) rewrite the picture without knowing Graphviz,
and keeps each step testable.

Node keys are stable: ``t17`` is tensor number 17 of the walk (``walk.py``), ``op17`` the
operation that made it, ``ub17_1`` the un-broadcast of its input 1 in the backward view.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..roundoff import number
from . import text
from .differences import rank
from .walk import host_values, output_layer, sample_count, value_of, wrap

# Fills: parameters blue, inputs and constants grey, operations pale yellow (forward view);
# the backward view keeps them, so the same tensor looks the same in both.
PARAMETER_FILL = "#dbe9f6"
CONSTANT_FILL = "#eeeeee"
RESULT_FILL = "#ffffff"
OP_FILL = "#fff3c4"
UNBROADCAST_FILL = "#e5f5e0"
NEUTRAL_OP_FILL = "#f7f7f7"   # operations while tensors are coloured by a measurement

NON_COMMUTATIVE = {"sub", "div", "matmul", "pow", "binary_cross_entropy_with_logits"}


@dataclass
class Measure:
    """What a colouring measured on a node, so that a collapsed layer box can take the colour
    of its worst member: ``rank`` orders members (larger is worse), ``summary`` says it in a
    few words (``dW[1] rel. diff 1.4e-01``, ``2.1e-01 in dA[1]``)."""
    kind: str                       # grad, compare
    rank: tuple
    summary: str
    state: str = ""                 # compare: "agree", "differ" or "no value"
    first: str | None = None        # compare: this node is the first to differ (its name)


@dataclass
class Node:
    """One box or ellipse. ``lines`` are (text, style) pairs, style "" | "mono" | "small"."""
    key: str
    kind: str                       # tensor, op, unbroadcast, layer, more
    title: str
    lines: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    scope: tuple = ()
    summary: str | None = None      # how a collapsed layer box lists this node
    role: str = ""                  # leaf, result, op
    italic: bool = False            # the title is a derived expression, not the user's name
    tensor: int | None = None       # its number in the walk
    measure: Measure | None = None  # set by a colouring
    same_as: tuple | None = None    # (key, name) of the box whose gradient this one IS, passed
                                    # on unchanged (backward view): a colouring copies its fill


@dataclass
class Edge:
    tail: str
    head: str
    label: str = ""
    attrs: dict = field(default_factory=dict)


@dataclass
class Model:
    nodes: dict
    edges: list
    root: str
    notes: list = field(default_factory=list)     # said under the picture and in .notes
    legend: list = field(default_factory=list)    # said under the picture only
    colouring: str | None = None                  # "grad" or "compare" once coloured
    layout_edges: list = field(default_factory=list)  # invisible, for Graphviz's ranks only


def tensor_values(graph) -> list:
    """Every tensor's array on the host, by walk number (the walk gives each one its value,
    saved by the graph or recomputed from its inputs: the same forward on the same arrays, the
    same numbers; ``walk.host_values`` brings another backend's over once)."""
    return host_values(graph)


def _tensor_fill(tensor) -> str:
    if tensor.is_leaf:
        return PARAMETER_FILL if tensor.requires_grad else CONSTANT_FILL
    return RESULT_FILL


def _array_lines(label, array, options):
    lines = [(line, "mono") for line in text.format_array(array, options.max_elements)]
    return ([(label, "small")] if label else []) + lines


def _grad_lines(tensor, grad, options, label="grad", is_root=False):
    """The lines of ``tensor``'s kept gradient ``grad`` (on the host; None: none kept)."""
    if not tensor.requires_grad:
        return []
    if grad is None:
        if is_root:
            return []  # dJ/dJ = 1: nothing to show
        if tensor.is_leaf:
            return [("grad: none yet (run backward)", "small")]
        return [("grad not kept (see retain_grad)", "small")]
    return _array_lines(label, grad, options)


def _kept_grad(tensor):
    """``tensor.grad`` where backward kept one (a leaf's, or a retained result's), else None,
    without the warning a user's read of a result's .grad gives."""
    return tensor.grad if tensor.is_leaf else tensor.grad_fn.grad


def kept_grads(graph) -> list:
    """Every kept gradient on the host, by walk number (None where there is none), brought
    over together (the lazy ones of a Dask graph, a retained dZ[l], computed once) and kept
    on the walk."""
    if graph.grads is None:
        kept = [_kept_grad(t) if t.requires_grad else None for t in graph.tensors]
        present = [k for k, grad in enumerate(kept) if grad is not None]
        for k, grad in zip(present, backend.to_numpy_all(kept[k] for k in present)):
            kept[k] = grad
        graph.grads = kept
    return graph.grads


def build_forward(graph, names, flags, scopes, options) -> Model:
    """Tensors (boxes) and the operations that made them (ellipses), inputs to root."""
    nodes, edges = {}, []
    shape_texts = [text.format_shape(t.shape, f) for t, f in zip(graph.tensors, flags)]
    # values only when asked for: a Dask graph is drawn by shape, computing nothing
    values = tensor_values(graph) if options.values else None
    grads = kept_grads(graph) if options.grads else None
    for k, tensor in enumerate(graph.tensors):
        shape_text = shape_texts[k]
        lines = [(shape_text, "")]
        if options.values:
            lines += _array_lines("value", values[k], options)
        if options.grads:
            lines += _grad_lines(tensor, grads[k], options, is_root=k == graph.root)
        name, atomic = names[k]
        nodes[f"t{k}"] = Node(
            key=f"t{k}", kind="tensor", title=leaf_title(graph, k, name), lines=lines, scope=scopes[k], tensor=k,
            italic=not tensor.name, role="leaf" if tensor.is_leaf else "result",
            summary=f"{name} {shape_text}" if tensor.name else None,
            attrs={"shape": "box", "style": "filled,rounded", "fillcolor": _tensor_fill(tensor)})
        if tensor.is_leaf:
            continue
        inputs = [graph.tensors[p] for p in graph.parents[k]]
        input_shapes = [shape_texts[p] for p in graph.parents[k]]
        input_names = [names[p][0] for p in graph.parents[k]]
        title, detail = text.op_label(tensor, inputs, input_shapes, input_names,
                                      [flags[p] for p in graph.parents[k]])
        nodes[f"op{k}"] = Node(
            key=f"op{k}", kind="op", title=title, lines=[(d, "small") for d in detail],
            scope=scopes[k], summary=title, role="op", tensor=k,
            attrs={"shape": "ellipse", "style": "filled", "fillcolor": OP_FILL})
        for i, p in enumerate(graph.parents[k]):
            if tensor.op in NON_COMMUTATIVE and len(inputs) == 2:
                # an external label: Graphviz places it after the layout, where no edge crosses it
                edges.append(Edge(f"t{p}", f"op{k}", "", {
                    "xlabel": ("left", "right")[i], "fontcolor": "#666666"}))
            else:
                edges.append(Edge(f"t{p}", f"op{k}"))
        edges.append(Edge(f"op{k}", f"t{k}"))
    root = f"t{graph.root}"
    nodes[root].attrs["penwidth"] = "2"
    return Model(nodes, edges, root, layout_edges=_leaves_beside_their_use(graph, scopes))


def leaf_title(graph, k, name) -> str:
    """A box's title: the name, and for eq 76's m (``walk.display_names``) its value too."""
    tensor = graph.tensors[k]
    if name == "m" and tensor.is_leaf and not tensor.name and tensor.size == 1:
        return f"m = {value_of(graph, k):g}"
    return name


def _leaves_beside_their_use(graph, scopes) -> list:
    """Invisible edges that put each leaf near the operand it meets: b[1] beside W[1]·X, Y
    beside log(A[2]), W[2] just under A[1]. Without them every leaf sits on the top rank, so
    each layer's cluster reaches up to the top and the layers step sideways like a staircase
    instead of stacking one under another."""
    edges = []
    for k, tensor in enumerate(graph.tensors):
        if not tensor.is_leaf:
            continue
        for c in sorted(graph.consumers[k]):
            partners = [p for p in graph.parents[c] if p != k and not graph.tensors[p].is_leaf]
            if partners:
                p = min(partners)
                # same layer: from the operation that made the partner, so the leaf shares the
                # partner's rank; another layer (W[2] meeting A[1]): from the partner itself, one
                # rank lower, so the two layers' clusters share no rank and can stack
                tail = f"op{p}" if scopes[p] == scopes[k] else f"t{p}"
                edges.append(Edge(tail, f"t{k}", "", {"style": "invis"}))
                break
    return edges


def build_backward(graph, names, flags, scopes, options) -> Model:
    """The adjoint flow from the root down to every tensor that needs a gradient: gradient
    boxes (dW[1], dZ[1], ...), each op's vjp, and edges labelled with the local rule. Where an
    input was broadcast (the bias of eq 33), the sum back to its shape is a node of its own:
    ``db[1] = Σ over axis 1 of dZ[1]`` (eq 80). Tensors needing no gradient (X, Y) are left out.
    """
    nodes, edges = {}, []
    tensors = graph.tensors
    grad_names = [text.gradient_name(*names[k]) for k in range(len(tensors))]
    flow_names, passed_by = pass_through_names(graph, grad_names)
    N = output_layer(names)
    one_sample = sample_count(graph, names, flags) == 1
    contributions = [len(graph.consumers[k]) for k in range(len(tensors))]
    grads = kept_grads(graph) if options.grads else None
    same_as = [None] * len(tensors)  # the end of a chain of pass-throughs: the box it equals
    for k in range(len(tensors) - 1, -1, -1):
        tensor = tensors[k]
        if not tensor.requires_grad:
            continue
        shape_text = text.format_shape(tensor.shape, flags[k])
        title = grad_names[k] + (" = 1" if k == graph.root and tensor.size == 1 else "")
        lines = [(shape_text, "")]
        if contributions[k] > 1:
            lines.append((f"sum of {contributions[k]} contributions", "small"))
        if passed_by[k] is not None:
            c = passed_by[k]
            same_as[k] = same_as[c] or (f"t{c}", flow_names[k])  # consumers come first
            equation = PASS_THROUGH_EQUATIONS.get((tensor.op, tensors[c].op))
            lines.append((f"= {flow_names[k]}: {tensors[c].op} passes it on unchanged"
                          + (f" ({equation})" if equation else ""), "small"))
        if options.grads and (passed_by[k] is None or grads[k] is not None):
            lines += _grad_lines(tensor, grads[k], options, label=None, is_root=k == graph.root)
        nodes[f"t{k}"] = Node(
            key=f"t{k}", kind="tensor", title=title, lines=lines, scope=scopes[k], tensor=k,
            italic=not tensor.name, role="leaf" if tensor.is_leaf else "result",
            summary=f"{grad_names[k]} {shape_text}" if tensor.name else None, same_as=same_as[k],
            attrs={"shape": "box", "style": "filled,rounded", "fillcolor": _tensor_fill(tensor)})
        if tensor.is_leaf:
            continue
        op = tensor.op
        nodes[f"op{k}"] = Node(
            key=f"op{k}", kind="op", title=f"{op} vjp", scope=scopes[k], summary=f"{op} vjp",
            role="op", tensor=k, attrs={"shape": "ellipse", "style": "filled", "fillcolor": OP_FILL})
        edges.append(Edge(f"t{k}", f"op{k}"))
        rule_names = [wrap(*names[p]) for p in graph.parents[k]] + [wrap(*names[k])]
        for i, p in enumerate(graph.parents[k]):
            source = tensors[p]
            if not source.requires_grad:
                continue
            # the output's gradient under the name the seed gives it: dZ[1], not d(W[1]·X)
            rhs = text.backward_rule(tensor, i, flow_names[k], rule_names)
            assign = "+=" if contributions[p] > 1 else "="
            equation = backward_equation(graph, names, flags, k, i, grad_names[p], N, one_sample)
            if passed_by[p] == k:
                equation = f"{op}'s vjp passes it on unchanged"
            if op in text.BROADCASTING_OPS and source.shape != tensor.shape:
                axes = text.describe_axes(text.unbroadcast_axes(source.shape, tensor.shape), tensor.ndim)
                key = f"ub{k}_{i}"
                nodes[key] = Node(
                    key=key, kind="unbroadcast", title=f"Σ over {axes}",
                    lines=[("un-broadcast: summed back to the input's shape", "small")],
                    scope=scopes[p] if scopes[p] else scopes[k], summary=f"Σ over {axes}",
                    role="op", tensor=k,
                    attrs={"shape": "box", "style": "filled,dashed", "fillcolor": UNBROADCAST_FILL})
                edges.append(Edge(f"op{k}", key, _join(rhs if rhs != grad_names[k] else "",
                                                      text.format_shape(tensor.shape, flags[k]))))
                edges.append(Edge(key, f"t{p}", _join(
                    f"{grad_names[p]} {assign} Σ over {axes} of {rhs}",
                    f"({equation or text.UNBROADCAST_EQUATION})")))
            else:
                edges.append(Edge(f"op{k}", f"t{p}", _join(
                    f"{grad_names[p]} {assign} {rhs}", f"({equation})" if equation else "")))
    root = f"t{graph.root}"
    nodes[root].attrs["penwidth"] = "2"
    return Model(nodes, edges, root, layout_edges=_next_layer_below(graph, scopes))


def backward_equation(graph, names, flags, k, i, produced, N, one_sample) -> str | None:
    """The equation behind the gradient the op that made tensor ``k`` hands to input ``i``:
    the one the seed gives for that quantity in its layer when it is one of the seed's
    (``produced`` = dW[1]: eq 83), else what the op owes to the seed (a mean: what it divides
    by; a log: eq 1), or None."""
    seed = text.seed_gradient(produced, N, one_sample)
    if seed is not None:
        return f"eq {seed[0]}"
    tensor = graph.tensors[k]
    if tensor.op == "mean":
        p = graph.parents[k][0]
        return "/ " + text.mean_divisor(graph.tensors[p].shape, tensor.grad_fn.params["axis"],
                                        flags[p])[1]
    return text.BACKWARD_EQUATIONS.get((tensor.op, i))


def _next_layer_below(graph, scopes) -> list:
    """Invisible edges for the backward view: a vjp that hands gradients to its own layer and
    to the one before (matmul's dW[2] and dA[1], eqs 79 and 81) puts the one before a rank
    lower, so the layers' clusters stack instead of standing side by side."""
    edges = []
    for k, tensor in enumerate(graph.tensors):
        if tensor.is_leaf or not tensor.requires_grad:
            continue
        wanted = [p for p in graph.parents[k] if graph.tensors[p].requires_grad]
        own = [p for p in wanted if scopes[p] == scopes[k]]
        for p in wanted:
            if scopes[p] != scopes[k]:
                edges.extend(Edge(f"t{q}", f"t{p}", "", {"style": "invis"}) for q in own)
    return edges


# The seed's equation behind a pass-through, by (op that made the tensor, op that passed its
# gradient on): Z[l] = W[l]·A[l-1] + b[l] (eq 33), so d(W[l]·A[l-1]) = dZ[l].
PASS_THROUGH_EQUATIONS = {("matmul", "add"): "eq 33"}

_G = "\u27e8g\u27e9"  # ⟨g⟩: a gradient name no formula writes by itself


def passes_on_unchanged(graph, k, slot) -> bool:
    """Whether the op that made tensor ``k`` hands its output's gradient to input ``slot``
    unchanged: its vjp formula (``Primitive.formula``, written beside the vjp) for that input
    is the output's gradient itself, and the input has the output's shape, so the engine has
    nothing to un-broadcast (eq 80's sum would make it another array: db, not dZ). True for
    add's inputs, sub's left one, a broadcast_to that does not broadcast, and any custom
    primitive whose formula says so; never for reshape ("g reshaped back") or transpose."""
    tensor = graph.tensors[k]
    inputs = [graph.tensors[p] for p in graph.parents[k]]
    if inputs[slot].shape != tensor.shape:
        return False
    node = tensor.grad_fn
    names = tuple(f"\u27e8x{i}\u27e9" for i in range(len(inputs))) + ("\u27e8out\u27e9",)
    return node.op.formula(slot, _G, names, node.params or {},
                           tuple(x.shape for x in inputs)) == _G


def pass_through_names(graph, grad_names) -> tuple:
    """(flow name, passed by) per tensor: the name under which the backward rules of the op
    that made tensor k use its gradient, and the consumer that passed it on (or None).

    The product ``W[1]·X`` of eq 33 has one use, the add of ``b[1]``, whose vjp returns the
    output's gradient unchanged to an input of the output's shape (``passes_on_unchanged``);
    so d(W[1]·X) IS dZ[1], and matmul's rules read ``dW[1] = dZ[1]·Xᵀ`` as eqs 79 and 83
    write them. Only unnamed, non-leaf tensors with exactly one use (one argument slot) are
    renamed: any other use would add a contribution, and a user's own name is kept.
    """
    flow = list(grad_names)
    passed_by = [None] * len(graph.tensors)
    for k in range(len(graph.tensors) - 1, -1, -1):  # consumers first: chains resolve
        tensor = graph.tensors[k]
        if (tensor.name or tensor.is_leaf or not tensor.requires_grad
                or len(graph.consumers[k]) != 1):
            continue
        c = graph.consumers[k][0]
        if passes_on_unchanged(graph, c, graph.parents[c].index(k)):
            flow[k] = flow[c]
            passed_by[k] = c
    return flow, passed_by


def _join(*parts) -> str:
    return "\n".join(p for p in parts if p)


# --- colouring by a measurement ---------------------------------------------------------------

# ColorBrewer YlOrRd, pale to dark: small to large gradient magnitudes.
MAGNITUDE_PALETTE = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
PASS_FILL = "#c7e9c0"
FAIL_FILL = "#fcae91"
NO_VALUE_FILL = "#d9d9d9"


def colour_by_gradient(model: Model, graph, names) -> None:
    """Fill each tensor box by max |grad| on a log scale (pale: small, dark: large), so a
    vanishing or exploding gradient stands out. Tensors without a gradient stay white."""
    model.colouring = "grad"
    magnitudes = {}
    grads = kept_grads(graph)
    for node in model.nodes.values():
        if node.kind == "tensor":
            grad = grads[node.tensor]
            if grad is not None and grad.size:
                magnitudes[node.key] = float(np.nanmax(np.abs(grad)))
    for node in model.nodes.values():
        if node.kind in ("op", "unbroadcast"):
            node.attrs["fillcolor"] = NEUTRAL_OP_FILL
        elif node.kind == "tensor":
            node.attrs["fillcolor"] = RESULT_FILL
    if not magnitudes:
        model.notes.append("color='grad': no tensor in the picture has a gradient yet; run "
                           "backward(retain_graph=True) before drawing (and retain_grad() for "
                           "intermediates)")
        return
    positive = [m for m in magnitudes.values() if m > 0 and np.isfinite(m)]
    low = np.log10(min(positive)) if positive else 0.0
    high = np.log10(max(positive)) if positive else 0.0
    top = len(MAGNITUDE_PALETTE) - 1
    for key, magnitude in magnitudes.items():
        if not np.isfinite(magnitude):
            step = top
        elif magnitude <= 0:
            step = 0
        else:
            step = 0 if high == low else int(round((np.log10(magnitude) - low) / (high - low) * top))
        node = model.nodes[key]
        node.attrs["fillcolor"] = MAGNITUDE_PALETTE[step]
        if step >= top - 1:
            node.attrs["fontcolor"] = "white"
        node.lines.append((f"max |grad| {magnitude:.2e}", "small"))
        name = text.gradient_name(*names[node.tensor])
        node.measure = Measure("grad", (step, magnitude if np.isfinite(magnitude) else np.inf),
                               f"{magnitude:.1e} in {name}")
    model.legend.append(f"fill: max |grad| on a log scale, from {10 ** low:.1e} (pale) to "
                        f"{10 ** high:.1e} (dark); white: no gradient")
    _colour_like_the_gradient_passed_on(model)


def colour_by_comparison(model: Model, graph, differences, names=None) -> None:
    """Fill each tensor box named in ``differences`` (``differences.read``: the hand-derived
    against the autodiff gradient, e.g. from the comparison report): green where they agree,
    red where they differ, grey where the hand derivation has no value. The first red one in
    backward order gets a thick border: that is where the two derivations part. Backward
    order is the report's row order when there is one, else the walk's (nearest the root)."""
    model.colouring = "compare"
    by_name = {}  # the names the picture shows: given, or inferred (dZ[2] when only W, b are)
    for node in model.nodes.values():
        if node.kind != "tensor":
            continue
        tensor = graph.tensors[node.tensor]
        shown = str(tensor.name) if tensor.name else (names[node.tensor][0] if names else None)
        if shown and (tensor.name or names[node.tensor][1]):
            by_name.setdefault(shown, node)
    matched = {}
    for name, difference in differences.by_name.items():
        node = by_name.get(name)
        if node is None and name.startswith("d"):
            node = by_name.get(name[1:])  # "dW[1]" is the gradient of "W[1]"
        if node is None:
            model.notes.append(f"compare: no tensor named {name!r} (or {name[1:]!r}) in the picture")
            continue
        matched[name] = (node, difference)
    failed = [name for name, (_, difference) in matched.items() if not difference.passed]
    first = None
    if differences.first in failed:  # the report's own verdict: where it says they part
        first = differences.first
    elif failed and differences.order is not None:
        first = next(name for name in differences.order if name in failed)
    elif failed:  # highest walk number: nearest the root
        first = max(failed, key=lambda name: matched[name][0].tensor)
    for name, (node, difference) in matched.items():
        if difference.relative is None:
            node.attrs["fillcolor"] = FAIL_FILL if name == first else NO_VALUE_FILL
            node.lines.append(("hand derivation: no value", "small"))
            summary = f"no hand value for {name}"
        else:
            node.attrs["fillcolor"] = PASS_FILL if difference.passed else FAIL_FILL
            # within round-off: the bound, not digits that vary with the CPU and BLAS
            relative = number(difference.relative, difference.roundoff)
            node.lines.append((f"rel. diff {relative}", "small"))
            summary = f"{name} rel. diff {relative}"
        state = ("agree" if difference.passed else
                 "no value" if difference.relative is None and name != first else "differ")
        node.measure = Measure("compare", rank(difference, name == first), summary, state)
        if name == first:
            node.attrs["penwidth"] = "3"
            node.lines.append(("first to differ in backward order", "small"))
            node.measure.first = name
    for node in model.nodes.values():
        if node.kind in ("op", "unbroadcast"):
            node.attrs["fillcolor"] = NEUTRAL_OP_FILL
    _colour_like_the_gradient_passed_on(model)
    model.legend.extend(differences.legend)
    if any(d.relative is None for _, d in matched.values()):
        model.legend.append("grey: the hand derivation has no value there (it stopped at the "
                            "first to differ)")


def _colour_like_the_gradient_passed_on(model: Model) -> None:
    """A box whose gradient was passed on unchanged (``Node.same_as``: d(W[1]·X), which add
    hands dZ[1] unchanged, eq 33) takes the fill of the box it equals, and says so: it is the
    same array, so it agrees or differs exactly as that one does. It gets no measure of its
    own (a layer box counts dZ[1] once) and no thick border (dZ[1] is the one that parts).
    A box measured in its own right (a retained gradient under ``color="grad"``) keeps its own."""
    for node in model.nodes.values():
        if node.same_as is None or node.measure is not None:
            continue
        key, name = node.same_as
        source = model.nodes.get(key)
        if source is None or source.measure is None:
            continue
        node.attrs["fillcolor"] = source.attrs["fillcolor"]
        if "fontcolor" in source.attrs:
            node.attrs["fontcolor"] = source.attrs["fontcolor"]
        node.lines.append((f"coloured as {name}: the same array", "small"))
