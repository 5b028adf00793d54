"""Optimizers (SGD eqs 74-75, Adam, AdamW, RMSprop), learning-rate schedules and gradient
clipping, in PyTorch's vocabulary: ``ag.optim.SGD(model.parameters(), lr=...)``."""
from . import schedules as lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_norm_
from .optimizer import NonFiniteGradientError, Optimizer
from .rmsprop import RMSprop
from .schedules import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "NonFiniteGradientError", "clip_grad_norm_",
           "clip_grad_norm", "lr_scheduler", "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR"]
