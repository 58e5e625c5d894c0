"""What the census-income models of the zoo share: the tasks and the experts."""

import functools

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.backbones.mlp import mlp
from keras_mtl.datasets.census_income import TASKS


def census_model(architecture, name, input_shape, expert_units, tower_units, learning_rate, compiled, **options):
    """Income > 50K and never-married, each a binary task with a ReLU tower and a
    sigmoid output, on experts that are MLPs of `expert_units`."""
    tasks = [presets.binary(task, hidden=(tower_units,), from_logits=False) for task in TASKS]
    model = build(architecture, tasks, backbone=functools.partial(mlp, units=tuple(expert_units)),
                  input_shape=input_shape, name=name, **options)
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), weighting="equal")
    return model
