"""Training over mini-batches of columns: ``fit``, ``evaluate``, ``EarlyStopping``, a resumable
``Shuffler``, ``History`` and the progress bar, and the accuracy metrics."""
from .fit import (EarlyStopping, History, ProgressBar, Shuffler, accuracy,
                  accuracy_of_probabilities, batches, check_outputs, check_plot_path, columns,
                  evaluate, fit)

__all__ = ["fit", "evaluate", "History", "ProgressBar", "EarlyStopping", "Shuffler", "accuracy",
           "accuracy_of_probabilities", "batches", "columns", "check_outputs", "check_plot_path"]
