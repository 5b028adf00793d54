"""What ``fit`` records (``History``: the loss and metrics per epoch) and its loss plot."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..io import check_writable, write_atomically


@dataclass
class History:
    """What ``fit`` recorded, one entry per epoch: ``loss`` (the mean J over the epoch's
    batches, weighted by batch size), ``metrics`` (``{"accuracy": [...], "val_loss": [...],
    ...}``) and ``seconds`` (the run's wall time)."""

    epochs: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    stopped_epoch: int = None   # the epoch early stopping ended the run at, else None
    best_epoch: int = None      # the epoch whose weights early stopping restored, else None

    def record(self, epoch, loss, values):
        self.epochs.append(epoch)
        self.loss.append(loss)
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.loss if key == "loss" else self.metrics[key]

    def plot(self, path, title=None):
        """Draw the loss curve (and validation loss, if recorded) to an image file.

        The format follows the suffix (``.png``, ``.svg``, ``.pdf``; none: png). Written by
        ``io.write_atomically`` like every file of the project: whole or not at all, an
        ordinary file (0644 under the usual umask), and a path that cannot be written (a missing folder, say) is one
        ``io.WriteError`` before anything is drawn. Needs matplotlib:
        ``pip install "autograd_lite[plot]"``.
        """
        Figure = _matplotlib_figure()
        if not self.loss:
            raise ValueError("History.plot: nothing recorded yet (fit ran for 0 epochs)")
        path = os.fspath(path)
        suffix = check_plot_path(path)
        figure = Figure(figsize=(6, 4))
        axes = figure.subplots()
        axes.plot(self.epochs, self.loss, label="training loss J (eq 76)")
        if "val_loss" in self.metrics:
            axes.plot(self.epochs, self.metrics["val_loss"], label="validation loss")
        axes.set_xlabel("epoch")
        axes.set_ylabel("J")
        axes.set_title(title or "loss")
        axes.legend()
        figure.tight_layout()
        write_atomically(path, lambda stream: figure.savefig(stream, format=suffix))


PLOT_FORMATS = ("png", "svg", "pdf")


def check_plot_path(path) -> str:
    """What ``History.plot(path)`` would refuse, asked before any work (a script that trains
    for an hour and then cannot write its plot has lost the hour): matplotlib missing
    (ImportError), a suffix that names no format (ValueError), a path that cannot be written
    (``io.WriteError``). Returns the format."""
    _matplotlib_figure()
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"History.plot: cannot tell the format of {path!r} from its suffix; "
                         f"use {', '.join('.' + name for name in PLOT_FORMATS)}")
    check_writable(path)
    return suffix


def check_outputs(plot=None, save=None):
    """``check_plot_path(plot)`` and ``io.check_writable(save)`` for those given: the
    examples call it before loading data or training."""
    if plot:
        check_plot_path(plot)
    if save:
        check_writable(save)


def _matplotlib_figure():
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("History.plot needs matplotlib, an optional extra: "
                          "pip install \"autograd_lite[plot]\"") from None
    return Figure


