"""Training over mini-batches of columns: ``fit``, ``evaluate``, ``EarlyStopping``, a resumable
``Shuffler``, ``History`` and the progress bar, and the accuracy metrics."""
from .early_stopping import EarlyStopping
from .fit import Epochs, Watch, fit
from .history import History, check_outputs, check_plot_path
from .metrics import accuracy, accuracy_of_probabilities, evaluate
from .progress import Log, ProgressBar
from .shuffler import Shuffler, batches, columns

__all__ = ["fit", "evaluate", "History", "ProgressBar", "EarlyStopping", "Shuffler", "accuracy",
           "accuracy_of_probabilities", "batches", "columns", "check_outputs", "check_plot_path",
           "Watch", "Epochs", "Log"]
