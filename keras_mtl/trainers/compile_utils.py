"""Compile-time resolution helpers of the multi-task trainer: each task's loss object,
the map from variables to their optimizers, and the layers that may name an
optimizer group."""

import keras

from keras_mtl import losses as losses_lib


class OptimizerAssignment:
    """Maps each variable to its optimizer for `keras.optimizers.MultiOptimizer`.

    Keyed by variable identity rather than by path, because variables of layers in
    nested models can share a path.
    """

    def __init__(self, default_optimizer, assignments):
        self.default_optimizer = default_optimizer
        self._by_variable = {id(v): opt for v, opt in assignments}
        self._optimizers = []
        for _, opt in assignments:
            if opt is not default_optimizer and opt not in self._optimizers:
                self._optimizers.append(opt)

    def values(self):
        return list(self._optimizers)

    def __call__(self, variable):
        return self._by_variable.get(id(variable), self.default_optimizer)


def loss_object(task, identifier):
    if identifier is None:
        raise ValueError(f"Task '{task}' has no loss. Pass loss=... to compile or to its Task.")
    loss = keras.losses.get(identifier)
    if isinstance(loss, keras.losses.Loss):
        return loss
    if not callable(loss):
        raise ValueError(f"Task '{task}': unknown loss {identifier!r}.")
    return losses_lib.FunctionLoss(loss, name=f"{task}_loss")


def nested_layers(model):
    """The layers of `model` and, recursively, of the models among them."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from nested_layers(layer)


def clone_optimizer(optimizer):
    return optimizer.__class__.from_config(optimizer.get_config())
