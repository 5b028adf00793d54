"""Layers and size: where each node is grouped, the "layers only" view, and the size policy.

- Groups come from ``ag.name_scope`` (the nn modules wrap each layer in one); a parameter made
  outside any scope joins the one layer that uses it. A graph with no
  scope at all is grouped by the seed's names instead: ``W[1]``, ``b[1]``, ``Z[1]``, ``A[1]``
  belong to "layer 1" (eqs 33-38), and an unnamed intermediate such as ``W[1]·X`` to the layer
  of the tensors computed from it.
- ``collapse`` turns each layer into one box (its parameters, its operations, its results).
- ``truncate`` keeps the nodes nearest the root and stands one "… more" node in for the rest.
"""
from __future__ import annotations

import re
from collections import deque

from .model import RESULT_FILL, Edge, Model, Node

LAYER_FILL = "#e8e0f0"

_SEED_NAME = re.compile(r"^[A-Za-z]+\[(\d+)\]$")


def scopes_for(graph, names=None) -> tuple:
    """(scope per tensor, where the scopes came from: "name_scope", "seed names" or None).
    ``names``: the display names (``walk.display_names``), whose Z[l], A[l] the structure
    gave (README's network names only W and b) place those tensors too."""
    scopes = [tuple(t.scope) for t in graph.tensors]
    if any(scopes):
        # a parameter made outside any scope (an nn layer creates W and b in its constructor,
        # then runs inside its scope) belongs to the layer that uses it, when only one does
        for k, tensor in enumerate(graph.tensors):
            if not scopes[k] and tensor.is_leaf and tensor.requires_grad:
                users = {scopes[c] for c in graph.consumers[k]}
                if len(users) == 1:
                    scopes[k] = users.pop()
        return scopes, "name_scope"
    inferred = [()] * len(graph.tensors)
    for k, tensor in enumerate(graph.tensors):
        shown = tensor.name or (names[k][0] if names is not None else None)
        match = _SEED_NAME.match(str(shown)) if shown else None
        if match and int(match.group(1)) >= 1:  # A[0] = X is the input, in no layer
            inferred[k] = (f"layer {int(match.group(1))}",)
    # an unnamed intermediate joins its users' layer when they all agree (root first, so every
    # user is settled before the tensors it was computed from)
    for k in range(len(graph.tensors) - 1, -1, -1):
        tensor = graph.tensors[k]
        if inferred[k] or tensor.is_leaf or (tensor.name and _SEED_NAME.match(str(tensor.name))):
            continue
        users = {inferred[c] for c in graph.consumers[k]}
        if len(users) == 1:
            inferred[k] = users.pop()
    return inferred, ("seed names" if any(inferred) else None)


def collapse_depth(model: Model) -> int:
    """How deep to collapse: 1 (the outermost scopes), or deeper while a single outer scope
    (such as a model wrapping its layers) holds every scoped node."""
    scopes = [n.scope for n in model.nodes.values() if n.scope]
    depth = 1
    while scopes and len({s[:depth] for s in scopes}) == 1 and all(len(s) > depth for s in scopes):
        depth += 1
    return depth


def collapse(model: Model) -> Model:
    """Each layer (scope at ``collapse_depth``) as one box listing its named tensors and its
    operations; edges between layers carry the name of the tensor that crosses."""
    depth = collapse_depth(model)
    group_of, groups = {}, {}
    for node in model.nodes.values():
        if len(node.scope) >= depth:
            group = node.scope[:depth]
            group_of[node.key] = group
            groups.setdefault(group, []).append(node)
    if not groups:
        return model
    # numbered in the order the layers compute (their first operation), not the order the walk
    # first met one of their parameters: layer0 is the first layer of the forward pass
    def first_computation(group):
        return min((n.tensor for n in groups[group] if n.role != "leaf" and n.tensor is not None),
                   default=len(model.nodes))
    keys = {group: f"layer{j}" for j, group in enumerate(sorted(groups, key=first_computation))}
    nodes = {}
    for node in model.nodes.values():
        if node.key not in group_of:
            nodes[node.key] = node
        elif keys[group_of[node.key]] not in nodes:
            group = group_of[node.key]
            nodes[keys[group]] = _layer_box(keys[group], group, groups[group], model.colouring)
    edges, seen = [], {}
    for edge in model.edges:
        tail = keys.get(group_of.get(edge.tail), edge.tail)
        head = keys.get(group_of.get(edge.head), edge.head)
        if tail == head:
            continue
        # name what crosses when it is hidden inside a box
        crossing = ""
        for key in (edge.tail, edge.head):
            node = model.nodes[key]
            if key in group_of and node.kind == "tensor" and node.summary:
                crossing = node.summary
                break
        if (tail, head) in seen:
            existing = seen[(tail, head)]
            if crossing and crossing not in existing.label.split("\n"):
                existing.label = "\n".join(filter(None, [existing.label, crossing]))
            continue
        seen[(tail, head)] = Edge(tail, head, crossing)
        edges.append(seen[(tail, head)])
    root = keys.get(group_of.get(model.root), model.root)
    return Model(nodes, edges, root, list(model.notes), list(model.legend), model.colouring)


def _layer_box(key, group, members, coloured) -> Node:
    leaves = [n.summary for n in members if n.role == "leaf" and n.summary]
    ops = []
    for n in members:
        if n.role == "op" and n.summary and n.summary not in ops:
            ops.append(n.summary)
    results = [n.summary for n in members if n.role == "result" and n.summary]
    lines = []
    for items, joiner in ((leaves, " · "), (ops, " → "), (results, " · ")):
        for start in range(0, len(items), 3):
            lines.append((joiner.join(items[start:start + 3]), "small" if joiner == " → " else ""))
    hidden = len(members)
    lines.append((f"{hidden} nodes", "small"))
    # under a colouring, a layer with nothing measured is white like an unmeasured tensor
    box = Node(key=key, kind="layer", title=group[-1], lines=lines, scope=group[:-1],
               attrs={"shape": "box", "style": "filled,rounded",
                      "fillcolor": RESULT_FILL if coloured else LAYER_FILL})
    _colour_by_worst(box, members)
    return box


def _colour_by_worst(box, members) -> None:
    """A layer box under a colouring takes the fill of its worst member (largest max |grad|;
    for compare: the first to differ, else the largest difference, else a missing hand value)
    and says which member that is, so a collapsed picture still shows where to look."""
    measured = [n for n in members if n.measure is not None]
    if not measured:
        return
    worst = max(measured, key=lambda n: n.measure.rank)
    box.attrs["fillcolor"] = worst.attrs["fillcolor"]
    if "fontcolor" in worst.attrs:
        box.attrs["fontcolor"] = worst.attrs["fontcolor"]
    if worst.measure.kind == "grad":
        least = min(measured, key=lambda n: n.measure.rank)
        box.lines.append((f"largest max |grad| {worst.measure.summary}", "small"))
        if least is not worst:
            box.lines.append((f"smallest {least.measure.summary}", "small"))
        return
    states = [n.measure.state for n in measured]
    counts = [f"{states.count(state)} {words}" for state, words in
              (("agree", "agree"), ("differ", "differ"), ("no value", "without a hand value"))
              if state in states]
    box.lines.append((f"of {len(measured)} gradients: " + " · ".join(counts), "small"))
    first = next((n.measure.first for n in measured if n.measure.first), None)
    if first:
        box.attrs["penwidth"] = "3"
        box.lines.append((f"first to differ: {first}", "small"))
    else:
        box.lines.append((f"{'worst' if 'differ' in states else 'largest'}: "
                          f"{worst.measure.summary}", "small"))


def truncate(model: Model, max_nodes: int) -> Model:
    """Keep the ``max_nodes - 1`` nodes nearest the root (breadth first, either direction)
    and one node that says how many were left out; edges to left-out nodes go through it."""
    neighbours = {key: [] for key in model.nodes}
    for edge in model.edges:
        neighbours[edge.tail].append(edge.head)
        neighbours[edge.head].append(edge.tail)
    kept = {model.root}
    queue = deque([model.root])
    while queue and len(kept) < max_nodes - 1:
        for other in neighbours[queue.popleft()]:
            if other not in kept and len(kept) < max_nodes - 1:
                kept.add(other)
                queue.append(other)
    left_out = [n for n in model.nodes.values() if n.key not in kept]
    if not left_out:
        return model
    counts = {}
    for node in left_out:
        counts[node.kind] = counts.get(node.kind, 0) + 1
    detail = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items())
    more = Node(key="more", kind="more", title=f"… {len(left_out)} more nodes not drawn",
                lines=[(detail, "small"), ("raise max_nodes (or None) to draw them", "small")],
                attrs={"shape": "note", "style": "filled", "fillcolor": "#ffffff"})
    nodes = {key: node for key, node in model.nodes.items() if key in kept}
    nodes["more"] = more
    edges, seen = [], set()
    for edge in model.edges:
        tail = edge.tail if edge.tail in kept else "more"
        head = edge.head if edge.head in kept else "more"
        if tail == head:
            continue
        if tail == "more" or head == "more":
            if (tail, head) in seen:
                continue
            seen.add((tail, head))
            edge = Edge(tail, head, "", {"style": "dashed"})
        edges.append(edge)
    return Model(nodes, edges, model.root, list(model.notes), list(model.legend),
                 model.colouring)
