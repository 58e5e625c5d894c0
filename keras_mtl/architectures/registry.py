"""Architectures by name, and `build`."""

import keras

from keras_mtl import backbones as backbones_lib
from keras_mtl.architectures._ownership import Claims
from keras_mtl.backbones.registry import renamed_copy
from keras_mtl.task import Task, check_task_names

_REGISTRY = {}


def register(name):
    """Decorator: makes `fn(tasks, inputs, backbone_factory, **options) -> outputs`
    available as `keras_mtl.build(name, ...)`.

    `backbone_factory(prefix)` returns a fresh backbone model whose layer names start
    with `prefix` (pass "" for the one shared copy); `outputs` is a dict by task name.
    """

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"An architecture named '{name}' is already registered.")
        _REGISTRY[name] = fn
        return fn

    return decorate


def available():
    return sorted(_REGISTRY)


def backbone_factory(backbone, input_shape, claims=None):
    """Returns `factory(prefix) -> backbone` for a name, a constructor or an instance.

    A prefixed backbone is a new copy. The unprefixed one of an instance (or of what
    a constructor returns) goes through `claims.take` when `claims` is given.
    """
    def own(layer):
        return layer if claims is None else claims.take(layer, "backbone")

    if isinstance(backbone, str):
        constructor = backbones_lib.get(backbone)
        return lambda prefix: constructor(input_shape, prefix=prefix)
    if isinstance(backbone, keras.layers.Layer):
        return lambda prefix: renamed_copy(backbone, prefix) if prefix else own(backbone)
    if callable(backbone):
        return lambda prefix: renamed_copy(backbone(input_shape), prefix) if prefix else own(backbone(input_shape))
    raise TypeError(
        "backbone must be a registered name, a function input_shape -> model, or a "
        f"Keras layer/model. Received: backbone={backbone!r}"
    )


def _input_shape(backbone, input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    if isinstance(backbone, keras.Model):
        try:
            return tuple(backbone.input_shape[1:])
        except (AttributeError, ValueError):
            pass
    raise ValueError("input_shape is required unless the backbone is a built Keras model.")


def build(architecture, tasks, backbone="conv", input_shape=None, name=None, **options):
    """Builds a multi-task model: one named output per task.

    Args:
        architecture: a registered name (`keras_mtl.architectures.available()`).
        tasks: a list of `keras_mtl.Task`.
        backbone: a registered backbone name ("conv", "mlp"), a function
            `input_shape -> keras.Model`, or a Keras model/layer.
        input_shape: the input shape without the batch axis (taken from a built
            backbone model when omitted).
        name: the model's name (defaults to the architecture's name).
        **options: architecture-specific options.

    Models built one after another share no variables. A head layer or backbone
    instance goes into the first model built with it as it is (a given backbone keeps
    its weights). A later build gets a fresh copy, with newly initialised weights, of
    a layer that was unbuilt when first given (such as a head `Dense`), and raises a
    `ValueError` for a layer that came with its own weights: pass a copy (or, for a
    backbone, a function `input_shape -> model`) instead. Architectures that run one
    backbone copy per task or expert (layer names prefixed) build every copy with
    newly initialised weights.

    Returns:
        A `keras_mtl.MultiTaskModel`.
    """
    from keras_mtl.model import MultiTaskModel

    if architecture not in _REGISTRY:
        raise ValueError(
            f"Unknown architecture: architecture={architecture!r}. Available: {available()}"
        )
    tasks = list(tasks)
    for t in tasks:
        if not isinstance(t, Task):
            raise TypeError(f"tasks must be keras_mtl.Task objects. Received: {t!r}")
    check_task_names(t.name for t in tasks)
    input_shape = _input_shape(backbone, input_shape)
    inputs = keras.Input(shape=input_shape, name="inputs")
    claims = Claims()
    tasks = [t.with_head(claims.take_head(t.head, t.name)) for t in tasks]
    outputs = _REGISTRY[architecture](tasks, inputs, backbone_factory(backbone, input_shape, claims), **options)
    model = MultiTaskModel(inputs=inputs, outputs=outputs, tasks=[t.spec() for t in tasks],
                           name=name or architecture)
    claims.commit(model.name)
    return model
