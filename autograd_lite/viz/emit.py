"""The model as a ``graphviz.Digraph``: HTML-like labels, and one cluster per scope.

Clusters nest like the scopes do (``('model', 'layer 1')`` is a cluster inside a cluster);
their names are ``cluster_0``, ``cluster_1``, ... in order of first appearance, so the DOT
source is the same every time the same graph is drawn.
"""
from __future__ import annotations

import textwrap

import graphviz

from .model import Model
from .text import escape

FONT = "Helvetica"
MONO_FONT = "Courier"


def lightness(colour) -> float | None:
    """Relative luminance (0 black, 1 white) of a ``#rrggbb`` fill, None for anything else."""
    if not (isinstance(colour, str) and len(colour) == 7 and colour.startswith("#")):
        return None
    try:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    except ValueError:
        return None
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def readable(node) -> None:
    """Text that reads on the node's fill: white on a dark fill (the dark reds of large
    gradients), black on a mid one (orange), where grey small print would not read."""
    shade = lightness(node.attrs.get("fillcolor"))
    if shade is not None and shade < 0.18:
        node.attrs["fontcolor"] = "white"


def small_print_colour(node) -> str:
    """Grey small print on pale fills; near-white on dark fills (white text); near-black on
    mid fills, where grey has too little contrast (WCAG's 4.5:1 for small text)."""
    if node.attrs.get("fontcolor") == "white":
        return "#f0f0f0"
    shade = lightness(node.attrs.get("fillcolor"))
    if shade is not None and shade < 0.6:
        return "#222222"
    return "#555555"


def html_label(node) -> str:
    title = escape(node.title)
    parts = [f"<I>{title}</I>" if node.italic else f"<B>{title}</B>"]
    readable(node)
    grey = small_print_colour(node)
    for text, style in node.lines:
        body = escape(text)
        if style == "mono":
            body = f'<FONT FACE="{MONO_FONT}" POINT-SIZE="9">{body}</FONT>'
        elif style == "small":
            # long small print wraps, so a note does not set the width of the picture
            body = "<BR/>".join(f'<FONT POINT-SIZE="9" COLOR="{grey}">{escape(part)}</FONT>'
                                for part in textwrap.wrap(text, SMALL_PRINT_LINE) or [""])
        parts.append(body)
    return "<" + "<BR/>".join(parts) + ">"


LONG_LINE = 44  # an edge label's line past this breaks before its "=" (a narrower picture)
SMALL_PRINT_LINE = 62  # a box's small print past this wraps


def edge_label(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        for sign in (" += ", " = "):
            if len(line) > LONG_LINE and sign in line:
                left, right = line.split(sign, 1)
                lines += [left, sign.strip() + " " + right]
                break
        else:
            lines.append(line)
    return "<" + "<BR/>".join(escape(line) for line in lines) + ">"


def caption_label(lines, width=100) -> str:
    """The caption under the picture: left-aligned lines, long ones wrapped."""
    wrapped = [part for line in lines for part in textwrap.wrap(line, width)]
    return "<" + "".join(f'{escape(line)}<BR ALIGN="LEFT"/>' for line in wrapped) + ">"


def to_digraph(model: Model, *, rankdir: str = "TB", caption=()) -> graphviz.Digraph:
    digraph = graphviz.Digraph(
        "autograd_lite",
        graph_attr={"rankdir": rankdir, "fontname": FONT, "fontsize": "10", "nodesep": "0.3",
                    "ranksep": "0.35", "forcelabels": "true"},
        node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.08,0.04"},
        edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"})
    if caption:
        digraph.attr(label=caption_label(caption), labelloc="b", labeljust="l")

    # the scope tree: each scope's own nodes, and its child scopes, in order of appearance
    members, children = {(): []}, {(): []}
    for node in model.nodes.values():
        scope = tuple(node.scope)
        for depth in range(1, len(scope) + 1):
            prefix = scope[:depth]
            if prefix not in members:
                members[prefix] = []
                children[prefix] = []
                children[prefix[:-1]].append(prefix)
        members[scope].append(node)

    cluster_names = {}
    # NOTE: recursive over the scope tree only (as deep as name_scopes nest, a handful), never
    # over the graph, whose walk is iterative.
    def fill(container, scope):
        for node in members[scope]:
            container.node(node.key, label=html_label(node), **node.attrs)
        for child in children[scope]:
            cluster_names[child] = f"cluster_{len(cluster_names)}"
            with container.subgraph(name=cluster_names[child]) as cluster:
                cluster.attr(label=edge_label(child[-1]), style="rounded,dashed", color="#888888",
                             fontcolor="#444444", fontsize="11", labelloc="t", labeljust="l")
                fill(cluster, child)

    fill(digraph, ())
    for edge in model.edges:
        attributes = dict(edge.attrs)
        if edge.label:
            attributes["label"] = edge_label(edge.label)
        digraph.edge(edge.tail, edge.head, **attributes)
    for edge in model.layout_edges:
        digraph.edge(edge.tail, edge.head, **edge.attrs)
    return digraph
