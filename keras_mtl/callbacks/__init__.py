"""Callbacks for multi-task training, one per file."""

from keras_mtl.callbacks.taskwise_early_stopping import TaskwiseEarlyStopping, tcdcn_criterion

__all__ = ["TaskwiseEarlyStopping", "tcdcn_criterion"]
