"""The stepping page: one self-contained HTML file that walks a learner through a graph.

``draw(J).save("backprop.html")`` (or ``page(J)``) writes the forward and the backward
pictures as inline SVG, with a small script of our own and no network access, and a list of
steps: the forward pass op by op (eqs 26-29, 33-34), then the backward pass vjp by vjp
(eqs 77-84), each with the rule applied and its equation, the incoming gradient, the result,
and the running sum where two contributions meet (dA[2] = sum of 2, the log-loss uses A[2]
twice). Every box opens to its full value and gradient arrays.

Everything the page says comes from the picture model (``model.py``) and the walk
(``walk.py``): the names, shapes, rules and equations are the ones the pictures print, so the
page and ``draw`` never disagree. The gradients are those of ``backward()``: the same vjps,
run in the same order on the same arrays (``walk.local_gradients``), summed back to each
input's shape where it was broadcast (eq 80), and added up where a tensor has several uses.
"""
from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..io import write_atomically
from ..roundoff import ROUNDING, number
from . import differences, emit, factors, text
from . import model as _model
from .picture import GraphPicture
from .walk import definition, local_gradients, output_layer, sample_count, walk, wrap

# Arrays up to this many elements are embedded in full; a larger one is described by its
# min, mean and max, and the page says that it was not embedded (never silently cut).
MAX_EMBEDDED = 20_000
# A graph past this many tensors makes a page nobody can step through (and a large file).
MAX_TENSORS = 2_000


@dataclass(frozen=True)
class _Plain:
    values: bool = False
    grads: bool = False
    max_elements: int = 16


class Page:
    """A stepping page. ``html``: the whole file; ``fragment()``: the part a notebook shows
    inline; ``save(path)``: write the file (whole or not at all); ``steps``: what each step
    says (dicts, as the page's script reads them)."""

    def __init__(self, data: dict, svgs: dict, title: str):
        self.data = data
        self.svgs = svgs
        self.title = title
        self.uid = "ag" + hashlib.sha1(
            (json.dumps(data, sort_keys=True) + "".join(svgs.values())).encode()).hexdigest()[:10]

    @property
    def steps(self) -> list:
        return self.data["steps"]

    def fragment(self) -> str:
        """The page's body: a ``<div>`` holding the pictures, the controls, the data and the
        script; every id inside starts with this page's own prefix, so a notebook can show
        several pages at once."""
        uid = self.uid
        views = []
        for view, svg in self.svgs.items():
            views.append(f'<div class="ag-view" data-view="{view}" hidden>{svg}</div>')
        data = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        # no "<" at all inside the script block: a name holding "</script>" or "<!--<script>"
        # (which would keep the HTML parser from ever ending the block) stays data
        data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        compare = ("" if not self.data["compare"] else
                   '<label class="ag-toggle"><input type="checkbox" class="ag-compare" checked> '
                   'colour by the hand derivation (eqs 77-84)</label>')
        return _TEMPLATE.format(
            uid=uid, css=_asset("page.css"), js=_asset("page.js"), views="\n".join(views),
            data=data, title=html.escape(self.title), compare=compare)

    @property
    def html(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{html.escape(self.title)}</title>\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "</head>\n<body class=\"ag-standalone\">\n" + self.fragment() + "\n</body>\n</html>\n")

    def save(self, path) -> Path:
        path = Path(path)
        content = self.html.encode("utf-8")
        write_atomically(path, lambda stream: stream.write(content))
        return path

    def _repr_html_(self):
        return self.fragment()

    def __repr__(self):
        return f"<Page {self.title!r}: {len(self.steps)} steps>"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


_TEMPLATE = """<div class="ag-page" id="{uid}" tabindex="0">
<style>{css}</style>
<div class="ag-graph">
{views}
</div>
<div class="ag-panel">
  <div class="ag-title">{title}</div>
  <div class="ag-controls">
    <button type="button" class="ag-prev" title="previous step (←)">◀ previous</button>
    <button type="button" class="ag-next" title="next step (→)">next ▶</button>
    <span class="ag-counter"></span>
  </div>
  <input type="range" class="ag-slider" min="0" max="0" value="0" aria-label="step">
  {compare}
  <div class="ag-details" hidden></div>
  <p class="ag-hint">Click any box to pin its full value and gradient here.</p>
  <div class="ag-step"></div>
</div>
<script type="application/json" class="ag-data">{data}</script>
<script>{js}
autogradLitePage(document.getElementById("{uid}"));</script>
</div>"""


# --- building the page --------------------------------------------------------------------------

def build(root, *, compare=None, tolerance=1e-6, samples="auto", clusters=True, rankdir="TB",
          title=None, max_tensors=MAX_TENSORS) -> Page:
    """The stepping page of the graph behind ``root`` (see the module docstring).

    ``compare``: as for ``draw`` (a comparison report, a mapping from name to relative
    difference, or what ``differences.read`` made of one); the page then offers a toggle that
    colours the boxes green where the hand derivation agrees with autodiff and red where it
    differs, the first to differ with a thick border (eqs 77-84).
    """
    from . import caption_lines, prepare  # the package imports this module

    graph = walk(root)
    if len(graph.tensors) > max_tensors:
        raise ValueError(f"page: the graph behind {root.name or 'this tensor'!r} has "
                         f"{len(graph.tensors)} tensors, more than the {max_tensors} a stepping "
                         f"page shows; draw it as a picture (draw(...).render) instead")
    # the page shows every value: brought to the host once (a Dask graph computed once)
    graph, names, flags, scopes, scope_source = prepare(root, samples, clusters, values=True,
                                                        graph=graph)
    if compare is not None and not isinstance(compare, differences.Differences):
        compare = differences.read(compare, tolerance)
    has_backward = bool(root.requires_grad)
    views = {"forward": (False, None)}
    if compare is not None:
        views["forward-compare"] = (False, "compare")
    if has_backward:
        views["backward"] = (True, None)
        if compare is not None:
            views["backward-compare"] = (True, "compare")

    uid_prefix = "v"
    models, svgs = {}, {}
    for view, (backward, color) in views.items():
        picture = _model_for(graph, names, flags, scopes, backward, color, compare)
        models[view] = picture
        for node in picture.nodes.values():
            node.attrs["id"] = f"{uid_prefix}-{view}-{node.key}"
            node.attrs["class"] = "ag-node"
        for edge in picture.edges:
            edge.attrs["id"] = f"{uid_prefix}-{view}-{edge.tail}-{edge.head}"
        caption = caption_lines(picture, graph, flags, scope_source if clusters else None)
        digraph = emit.to_digraph(picture, rankdir=rankdir, caption=caption)
        svgs[view] = _inline_svg(GraphPicture(digraph, (), view, {}).pipe("svg"))

    values = _model.tensor_values(graph)
    shapes = [text.format_shape(t.shape, f) for t, f in zip(graph.tensors, flags)]
    tensors = [_tensor_entry(graph, names, shapes, values, k) for k in range(len(graph.tensors))]
    steps = _forward_steps(graph, names, shapes, values, models["forward"])
    grads = None
    if has_backward:
        offset = len(steps)
        backward_steps, grads, done_at = _backward_steps(
            graph, names, flags, shapes, values, models["backward"], models.get("backward-compare"),
            compare)
        steps += backward_steps
    for k, entry in enumerate(tensors):
        if grads is not None and grads[k] is not None:
            entry["grad"] = _array(grads[k])
            entry["gradStep"] = offset + done_at[k]  # not shown before backward computes it
    nodes = {view: {key: _node_entry(node) for key, node in picture.nodes.items()}
             for view, picture in models.items()}
    root_name = names[graph.root][0]
    data = {"compare": compare is not None, "tensors": tensors, "steps": steps, "nodes": nodes,
            "prefix": uid_prefix}
    return Page(data, svgs, title or f"Backpropagation, step by step: {root_name}")


def _model_for(graph, names, flags, scopes, backward, color, compare):
    from . import build_model
    return build_model(graph, names, flags, scopes, _Plain(), backward, color, compare)


def _inline_svg(svg_bytes: bytes) -> str:
    """Graphviz's SVG without its XML prolog and doctype (not allowed inside HTML)."""
    svg = svg_bytes.decode("utf-8")
    return svg[svg.index("<svg"):]


def _array(array) -> dict:
    """An array as JSON: its shape and, up to MAX_EMBEDDED elements, every element (in full
    precision; NaN and infinities as the strings JavaScript's Number() reads)."""
    array = np.asarray(array, dtype=np.float64)
    entry = {"shape": list(array.shape)}
    if array.size > MAX_EMBEDDED:
        entry["omitted"] = (f"{array.size} elements, more than the {MAX_EMBEDDED} a page embeds: "
                            + "; ".join(text.format_array(array, 0)))
        return entry
    flat = array.reshape(-1)
    if np.isfinite(flat).all():
        entry["data"] = flat.tolist()
    else:
        entry["data"] = [float(x) if np.isfinite(x) else
                         ("NaN" if np.isnan(x) else "Infinity" if x > 0 else "-Infinity")
                         for x in flat]
    return entry


def _tensor_entry(graph, names, shapes, values, k):
    tensor = graph.tensors[k]
    name, atomic = names[k]
    kind = ("parameter" if tensor.is_leaf and tensor.requires_grad else
            "input or constant" if tensor.is_leaf else f"made by {tensor.op}")
    if name == "m" and tensor.is_leaf and not tensor.name:
        kind = "the number of samples m (eq 76): the columns of X, eq 25"
        name = _model.leaf_title(graph, k, name)
    defined = definition(graph, names, k) if not tensor.is_leaf else ""
    return {"name": name, "gradName": text.gradient_name(name, atomic), "shape": shapes[k],
            "kind": kind, "definition": "" if defined == name else defined,
            "value": _array(values[k]), "grad": None,
            "requiresGrad": bool(tensor.requires_grad)}


def _node_entry(node) -> dict:
    entry = {"kind": node.kind, "title": node.title,
             "lines": [line for line, _ in node.lines]}
    if node.tensor is not None:
        entry["tensor"] = node.tensor
    if node.measure is not None and node.measure.kind == "compare":
        entry["compare"] = {"state": node.measure.state, "summary": node.measure.summary,
                            "first": bool(node.measure.first)}
    return entry


def _in_order_of_use(graph, tensors):
    """Leaves in the order the forward pass first uses them: X, W[1], b[1], W[2], ..."""
    return sorted(tensors, key=lambda k: (min(graph.consumers[k], default=k), k))


def _forward_steps(graph, names, shapes, values, picture) -> list:
    leaves = _in_order_of_use(graph, [k for k, t in enumerate(graph.tensors) if t.is_leaf])
    parameters = [names[k][0] for k in leaves if graph.tensors[k].requires_grad]
    inputs = [names[k][0] for k in leaves if not graph.tensors[k].requires_grad]
    steps = [{
        "phase": "start", "view": "forward", "highlight": [f"t{k}" for k in leaves],
        "title": "The leaves: where the forward pass starts",
        "rule": "",
        "text": (f"Inputs and constants (grey): {', '.join(inputs) or 'none'}. "
                 f"Parameters (blue, they get gradients): {', '.join(parameters) or 'none'}. "
                 f"Press → (or “next”) to compute the graph one operation at a time."),
        "arrays": [{"label": names[k][0], "tensor": k, "which": "value"} for k in leaves],
    }]
    operations = [k for k, t in enumerate(graph.tensors) if not t.is_leaf]
    for number, k in enumerate(operations, 1):
        op_node = picture.nodes[f"op{k}"]
        name = names[k][0]
        defined = definition(graph, names, k)
        equation = f"{name} = {defined}" if defined != name else name
        steps.append({
            "phase": "forward", "view": "forward",
            "highlight": [f"op{k}", f"t{k}"] + [f"t{p}" for p in graph.parents[k]],
            "current": f"t{k}",
            "edges": [f"t{p}-op{k}" for p in graph.parents[k]] + [f"op{k}-t{k}"],
            "title": f"Forward {number} of {len(operations)}: {equation}",
            "rule": " · ".join([op_node.title] + [line for line, _ in op_node.lines]),
            "text": f"{graph.tensors[k].op} of {', '.join(names[p][0] for p in graph.parents[k])}"
                    f" gives {name} ({shapes[k]}).",
            "arrays": [{"label": f"{names[p][0]} (input)", "tensor": p, "which": "value"}
                       for p in dict.fromkeys(graph.parents[k])]
                      + [{"label": f"{name} (result)", "tensor": k, "which": "value",
                          "result": True}],
        })
    return steps


def _backward_steps(graph, names, flags, shapes, values, picture, compared, compare):
    """One step per (operation, input needing a gradient), from the root down. Each names the
    gradient it produces and the one equation the seed gives for it in its layer (eqs 77-84;
    66-73 for one sample), shows the rule with every factor's values (the gradient coming in,
    the local factor, their product, eq 80's sum over the samples where the input was
    broadcast) and the running sum at an input used more than once."""
    tensors = graph.tensors
    grad_names = [text.gradient_name(*names[k]) for k in range(len(tensors))]
    flow_names, _ = _model.pass_through_names(graph, grad_names)
    N = output_layer(names)
    m = sample_count(graph, names, flags)
    one_sample = m == 1
    uses = [sum(1 for c in graph.consumers[k] if tensors[c].requires_grad)
            for k in range(len(tensors))]
    received = [0] * len(tensors)
    grads = [None] * len(tensors)
    done_at = [None] * len(tensors)   # the step at which each gradient is complete
    root = graph.root
    grads[root] = np.ones_like(np.asarray(values[root], dtype=np.float64))
    seeded = ("dJ/dJ = 1" if np.size(values[root]) == 1 else
              f"{grad_names[root]} = ones of shape {shapes[root]}: the gradient of the sum of "
              f"{names[root][0]}")
    steps = [{
        "phase": "backward", "view": "backward", "highlight": [f"t{root}"], "current": f"t{root}",
        "title": f"Backward starts at {grad_names[root]} = 1",
        "rule": seeded, "quantity": grad_names[root],
        "text": "Reverse mode visits the operations from the root back to the leaves; each "
                "one's vjp turns the gradient of its output into the gradients of its inputs "
                "(eqs 77-84). A tensor used twice receives two contributions, added up.",
        "arrays": [{"label": grad_names[root], "array": _array(grads[root]), "role": "result"}],
    }]
    done_at[root] = 0
    edge_labels = {(edge.tail, edge.head): edge.label for edge in picture.edges}
    first = len(steps)
    number = 0
    for k in range(len(tensors) - 1, -1, -1):
        tensor = tensors[k]
        if tensor.is_leaf or not tensor.requires_grad or grads[k] is None:
            continue
        g = grads[k]
        local = local_gradients(graph, k, g, values)
        rule_names = [wrap(*names[p]) for p in graph.parents[k]] + [wrap(*names[k])]
        for i, p in enumerate(graph.parents[k]):
            if local[i] is None:
                continue
            number += 1
            raw = np.asarray(local[i], dtype=np.float64)
            source_shape = tensors[p].shape
            name = grad_names[p]
            factor = _checked_factor(graph, names, k, i, g, raw, values,
                                     text.backward_rule(tensor, i, factors.PLACEHOLDER, rule_names))
            arrays = [{"label": f"{flow_names[k]} (coming in)", "array": _array(g),
                       "tensor": k, "which": "grad", "role": "incoming"}]
            if factor is not None:
                shown = f"({factor.label})" if factor.label.startswith("−") else factor.label
                product = FORMS[factor.form].format(g=flow_names[k], F=shown)
                arrays.append({"label": f"the local factor {factor.label}, applied as {product}",
                               "array": _array(factor.array), "role": "factor",
                               "form": factor.form})
            highlight = [f"op{k}", f"t{p}"]
            edges = [f"t{k}-op{k}"]
            unbroadcast = f"ub{k}_{i}"
            summed = raw.shape != tuple(source_shape)
            if summed:
                axes = text.unbroadcast_axes(source_shape, raw.shape)
                where = text.describe_axes(axes, raw.ndim)
                arrays.append({"label": f"= their product, before the sum over {where}",
                               "array": _array(raw), "role": "product"})
                contribution = raw.sum(axis=axes, keepdims=True).reshape(source_shape)
                highlight.insert(1, unbroadcast)
                edges += [f"op{k}-{unbroadcast}", f"{unbroadcast}-t{p}"]
                rule = edge_labels.get((unbroadcast, f"t{p}"), "")
            else:
                contribution = raw
                edges.append(f"op{k}-t{p}")
                rule = edge_labels.get((f"op{k}", f"t{p}"), "")
            made = "summed" if summed else "product"
            made_label = f"Σ over {where} = " if summed else "= "
            axes_entry = {"axes": list(axes)} if summed else {}
            received[p] += 1
            before = grads[p]
            grads[p] = contribution if before is None else before + contribution
            complete = received[p] == uses[p]
            if uses[p] > 1:
                if before is not None:
                    arrays.append({"label": f"{name} so far ({received[p] - 1} of {uses[p]})",
                                   "array": _array(before), "role": "before"})
                arrays.append({"label": f"{made_label}contribution {received[p]} of {uses[p]} "
                                        f"to {name}",
                               "array": _array(contribution), "role": f"{made} contribution",
                               **axes_entry})
                arrays.append({"label": (f"{name} = sum of {uses[p]} contributions" if complete
                                         else f"running sum of {name} so far ({received[p]} of "
                                              f"{uses[p]})"),
                               "array": _array(grads[p]), "result": True, "role": "result",
                               **({"tensor": p, "which": "grad"} if complete else {})})
                summing = (f"{name} is used {uses[p]} times, so its gradient is the sum of "
                           f"{uses[p]} contributions: this is contribution {received[p]}"
                           + (", and the sum is now complete." if complete else "; more to come."))
            else:
                arrays.append({"label": f"{made_label}{name}", "array": _array(contribution),
                               "result": True, "tensor": p, "which": "grad",
                               "role": f"{made} result", **axes_entry})
                summing = ""
            seed = text.seed_gradient(name, N, one_sample)
            equation = ({"number": seed[0], "rule": seed[1], "layer": _layer_of(name),
                         "where": "the output layer" if _layer_of(name) == N else "a hidden layer"}
                        if seed is not None else
                        {"text": _model.backward_equation(graph, names, flags, k, i, name, N,
                                                          one_sample) or ""})
            step = {
                "phase": "backward", "view": "backward", "highlight": highlight,
                "current": f"t{p}", "edges": edges, "quantity": name, "equation": equation,
                "title": f"Backward {number} of {{count}}: {tensor.op} vjp gives "
                         f"{name}" + (f" (contribution {received[p]} of {uses[p]})"
                                      if uses[p] > 1 else ""),
                "rule": rule,
                "text": " ".join(filter(None, [summing, _convention(name, seed, one_sample)])),
                "arrays": arrays,
            }
            if complete and seed is not None and name == f"dZ[{N}]":
                simplified = _seed_simplification(graph, names, N, m, grads[p], values)
                if simplified is not None:
                    step["simplified"] = simplified
            if compared is not None:
                _compare_lines(step, compared, compare, p, grads[p] if complete else None)
            steps.append(step)
            done_at[p] = len(steps) - 1  # its last contribution: the one completing the sum
    for step in steps[first:]:
        step["title"] = step["title"].replace("{count}", str(number))
    leaves = _in_order_of_use(graph, [k for k, t in enumerate(tensors)
                                      if t.is_leaf and grads[k] is not None])
    steps.append({
        "phase": "end", "view": "backward", "highlight": [f"t{k}" for k in leaves],
        "title": "Done: every parameter has its gradient",
        "rule": "",
        "text": "These are the arrays backward() stores in .grad (eqs 79-80, 83-84 for the "
                "seed's W and b); gradient descent then updates each parameter (eqs 74-75).",
        "arrays": [{"label": grad_names[k], "tensor": k, "which": "grad", "result": True}
                   for k in leaves],
    })
    return steps, grads, done_at


# How each form of a vjp's product reads on the panel: ∘ elementwise, · a matrix product
FORMS = {"g∘F": "{g} ∘ {F}", "g·F": "{g}·{F}", "F·g": "{F}·{g}"}


def _checked_factor(graph, names, k, i, g, raw, values, formula):
    """The step's local factor, only when its product with ``g`` is the vjp's own result (to
    round-off): the page never shows a factor that does not multiply out."""
    operand_names = [names[p] for p in graph.parents[k]] + [names[k]]
    try:
        factor = factors.local_factor(graph, k, i, g, values, formula, operand_names)
    except (ValueError, TypeError, FloatingPointError):
        return None
    if factor is None:
        return None
    with np.errstate(all="ignore"):
        product = factors.multiply(factor, g)
    try:
        product = np.broadcast_to(product, raw.shape)
    except ValueError:
        return None
    scale = float(np.max(np.abs(raw), initial=0.0))
    if not np.allclose(product, raw, rtol=1e-12, atol=1e-300 + 1e-13 * scale, equal_nan=True):
        return None
    return factor


def _layer_of(name):
    return int(name[name.index("[") + 1:-1])


def _convention(name, seed, one_sample) -> str:
    """Where the 1/m sits: autodiff differentiates J itself, so dA and dZ carry eq 76's 1/m
    and dW, db do not add it again (the conventions of eqs 77-84)."""
    if seed is None or one_sample:
        return ""
    if name.startswith(("dA", "dZ")):
        return (f"{name} here is dJ/d{name[1:]}, eq 76's 1/m inside; the seed's per-sample "
                f"{name} of eq {seed[0]} is m times it.")
    return (f"The 1/m of eq {seed[0]} is already inside dZ (the conventions of eqs 77-84), so "
            f"nothing more is divided here.")


def _seed_simplification(graph, names, N, m, dZ, values):
    """dZ[N] = A[N] − Y (eqs 77-78 for a sigmoid output with log-loss), divided by m as J's
    mean divides it: its values beside autodiff's, when the graph is that network."""
    found = {names[k][0]: k for k in range(len(graph.tensors))}
    a, y = found.get(f"A[{N}]"), found.get("Y")
    if a is None or y is None or m is None or graph.tensors[a].op != "sigmoid":
        return None
    A, Y = values[a], values[y]
    if np.shape(A) != np.shape(Y) or np.shape(dZ) != np.shape(A):
        return None
    users = {graph.tensors[c].op for c in graph.consumers[a]}
    if not users & {"log", "xlogy", "sub"}:
        return None  # not the log-loss of eq 1
    simplified = (np.asarray(A, dtype=np.float64) - Y) / m
    difference = float(np.max(np.abs(simplified - dZ))) if np.size(dZ) else 0.0
    bound = ROUNDING * max(float(np.max(np.abs(A))), float(np.max(np.abs(Y))), 1.0) / m
    if difference > 1e3 * bound:
        return None  # another loss: the simplification does not hold, so it is not shown
    if m == 1:  # one sample: eq 67 (eq 54) with eq 8 and the log-loss of eq 1
        words, said = f"a[{N}] − y", f"(eqs 66-67 with eq 8, sigmoid output with log-loss): dz[{N}] = a[{N}] − y"
    else:
        words, said = (f"(A[{N}] − Y) / m", f"(eqs 77-78, sigmoid output with log-loss): dZ[{N}] = "
                       f"A[{N}] − Y per sample, divided by m = {m} as J's mean does")
    return {"label": words, "array": _array(simplified),
            "text": (f"The seed's simplification {said}. Beside autodiff's dZ[{N}]: max "
                     f"|difference| {number(difference, bound)}.")}


def _compare_lines(step, compared, compare, p, autodiff):
    """What the comparison says at this step; at the first to differ, the hand derivation's
    values beside autodiff's and the rule that was wrong (a report's rows hold both)."""
    node = compared.nodes.get(f"t{p}")
    if node is None or node.measure is None:
        return
    step["compare"] = node.measure.summary + (
        " — the first to differ in backward order" if node.measure.first else "")
    step["compareState"] = node.measure.state
    if not node.measure.first:
        return
    rows = compare.rows or {}
    row = rows.get(node.measure.first)
    values = getattr(row, "values", None) or {}
    hand = values.get("reference")
    auto = values.get("autodiff", autodiff)
    if hand is not None and auto is not None:
        step["handBeside"] = {"hand": _array(hand), "autodiff": _array(auto),
                              "label": node.measure.first}
    if compare.wrong:
        step["wrongRule"] = compare.wrong
    if compare.explanation:
        step["explanation"] = compare.explanation
