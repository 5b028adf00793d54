"""A drawn graph: its DOT source, rendering to a file with Graphviz ``dot``, notebook display.

Rendering runs the real ``dot`` program. Without it, ``render`` and ``pipe`` raise
``GraphvizNotFoundError`` saying how to install Graphviz, and the DOT source stays available
(``picture.source``, or ``picture.render("graph.dot")``, which needs no ``dot``).
Files are written whole or not at all: to a temporary file in the same directory, then moved
into place with ``os.replace``.
"""
from __future__ import annotations

import weakref
from pathlib import Path

import graphviz

from ..io import write_atomically

# a notebook shows the stepping page of graphs up to this size, the SVG of bigger ones
NOTEBOOK_PAGE_TENSORS = 400

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

INSTALL_HINT = (
    "Install Graphviz: Debian/Ubuntu `sudo apt-get install graphviz`, macOS `brew install "
    "graphviz`, conda `conda install -c conda-forge graphviz`, Windows: "
    "https://graphviz.org/download/ (then make sure `dot` is on PATH). The DOT source is still "
    "available without it: picture.source, or picture.render('graph.dot').")


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed (or not on PATH)."""


class GraphPicture:
    """The picture of a computation graph, as ``autograd_lite.viz.draw`` returns it.

    - ``source``: the DOT text; ``digraph``: the ``graphviz.Digraph`` (to restyle it);
    - ``notes``: what the size policy or the options changed (also written under the picture);
    - ``render(path, format=None)``: write svg, png, pdf (via ``dot``) or dot (the source);
    - ``pipe(format)``: the rendered bytes; ``key_of(tensor)``: that tensor's node name (``t3``);
    - in Jupyter it displays itself as SVG.
    """

    def __init__(self, digraph, notes, view, keys, root=None, page=None):
        self.digraph = digraph
        self.notes = tuple(notes)
        self.view = view
        self._keys = keys  # id of a node or leaf -> (weak reference to it, node key): see key_table
        # what the stepping page is made from: the root, held weakly like the keys, and the
        # options of draw() that the page shares (compare, samples, clusters, rankdir)
        self._root = None if root is None else weakref.ref(root)
        self._page_options = dict(page or {})

    @property
    def source(self) -> str:
        return self.digraph.source

    def key_of(self, tensor) -> str:
        """The DOT node name of ``tensor`` in this picture (``t`` + its walk number)."""
        entry = getattr(tensor, "grad_fn", None) or tensor
        ref, key = self._keys.get(id(entry), (None, None))
        if ref is None or ref() is not entry:
            label = repr(getattr(tensor, "name", None) or type(tensor).__name__)
            raise KeyError(f"key_of: {label} is not in this picture")
        return key

    def pipe(self, format: str = "svg") -> bytes:
        """The picture rendered by ``dot`` in ``format`` (svg, png, pdf), as bytes."""
        if format == "dot":
            return self.source.encode("utf-8")
        if format not in ("svg", "png", "pdf"):
            raise ValueError(f"render: format {format!r} is not supported; use svg, png, pdf or dot")
        try:
            return self.digraph.pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(
                f"render: the Graphviz `dot` program was not found, so the picture cannot be "
                f"rendered as {format}. {INSTALL_HINT}") from None
        except graphviz.CalledProcessError as error:
            stderr = (error.stderr or b"").decode("utf-8", "replace").strip()
            raise RuntimeError(f"render: Graphviz `dot` failed on this graph: {stderr}") from None

    def render(self, path, format: str | None = None) -> Path:
        """Write the picture to ``path``; its suffix (.svg .png .pdf .dot) picks the format
        unless ``format`` is given. Returns the path. Written whole or not at all."""
        path = Path(path)
        if format is None:
            format = FORMATS.get(path.suffix.lower())
            if format is None:
                raise ValueError(f"render: cannot tell the format from the suffix {path.suffix!r} "
                                 f"of {str(path)!r}; use .svg, .png, .pdf or .dot, or pass format=")
        data = self.pipe(format)
        write_atomically(path, lambda stream: stream.write(data))
        return path

    def page(self, title=None, max_tensors=None):
        """The stepping page of the same graph (``viz.page``): forward op by op, then backward
        vjp by vjp, every box opening to its full arrays; coloured by ``compare`` if the
        picture was. Needs the graph's root tensor to be alive, and the graph not freed."""
        root = None if self._root is None else self._root()
        if root is None:
            raise RuntimeError("page: the tensor this picture was drawn from has been garbage collected, so "
                               "there is no graph to step through; keep a reference to it (J) "
                               "and call draw(J).save('page.html')")
        from .page import MAX_TENSORS, build
        return build(root, title=title, max_tensors=max_tensors or MAX_TENSORS,
                     **self._page_options)

    def save(self, path, format: str | None = None) -> Path:
        """Like ``render``, and a ``.html`` path (or ``format="html"``) writes the stepping
        page (``page()``): one self-contained file, nothing loaded from the network."""
        path = Path(path)
        if format == "html" or (format is None and path.suffix.lower() in (".html", ".htm")):
            return self.page().save(path)
        return self.render(path, format)

    # --- Jupyter ----------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            bundle = {"image/svg+xml": self.pipe("svg").decode("utf-8")}
        except GraphvizNotFoundError as error:
            return {"text/plain": f"{error}\n\n{self.source}"}
        page = self._repr_html_()
        if page is not None:
            bundle["text/html"] = page  # a notebook shows the stepping page, the SVG is the fallback
        return bundle

    def _repr_html_(self):
        """The stepping page, inline; None (the SVG is shown instead) when the graph is gone
        or has more tensors than a picture draws in full (``max_nodes``' default, 400)."""
        try:
            return self.page(max_tensors=NOTEBOOK_PAGE_TENSORS).fragment()
        except (RuntimeError, ValueError, GraphvizNotFoundError):
            return None

    def _repr_svg_(self):
        try:
            return self.pipe("svg").decode("utf-8")
        except GraphvizNotFoundError:
            return None

    def __str__(self):
        return self.source

    def __repr__(self):
        notes = f"; {len(self.notes)} note(s): " + " | ".join(self.notes) if self.notes else ""
        return f"<GraphPicture: {self.view} view{notes}>"


def key_table(graph, model) -> dict:
    """For each tensor with a box in the final picture: the id of its node (or of the leaf
    itself) -> (a weak reference to it, the box's key). By identity and weakly, so the picture
    keeps no array alive and any Tensor of the same node finds its box."""
    table = {}
    for k, tensor in enumerate(graph.tensors):
        if f"t{k}" in model.nodes:
            entry = tensor.grad_fn or tensor
            table[id(entry)] = (weakref.ref(entry), f"t{k}")
    return table
