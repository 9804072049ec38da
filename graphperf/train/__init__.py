"""Training-step projections: one data-parallel training step (forward with the loss, backward with DDP's gradient
all-reduces overlapped, the optimizer) on `dp` devices."""

from .step import SCHEMA, TrainResult, train

__all__ = ["SCHEMA", "TrainResult", "train"]
