"""keras_mtl: multi-task learning for Keras 3."""

__version__ = "0.1.0"

from keras_mtl import (architectures, backbones, callbacks, datasets, detection, evaluation, experiments, layers, losses,
                       metrics, plot, statistics, weighting)
from keras_mtl.architectures import build
from keras_mtl import export as export_lib
from keras_mtl.export import export
from keras_mtl.graph import variable_partition
from keras_mtl.model import MultiTaskModel
from keras_mtl.task import Task

__all__ = [
    "MultiTaskModel",
    "Task",
    "architectures",
    "backbones",
    "callbacks",
    "datasets",
    "detection",
    "evaluation",
    "experiments",
    "build",
    "export",
    "export_lib",
    "layers",
    "losses",
    "metrics",
    "plot",
    "statistics",
    "variable_partition",
    "weighting",
]
