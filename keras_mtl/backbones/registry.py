"""Backbone constructors by name, and the taps of each."""

import keras

_REGISTRY = {}
_TAPS = {}


def register(name, taps=()):
    """Decorator: makes a backbone constructor available as `backbone=name`; `taps`
    are the names of its layers that a head may read (`Task(tap=...)`), shallow to
    deep, at the constructor's default options."""

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"A backbone named '{name}' is already registered.")
        _REGISTRY[name] = fn
        _TAPS[name] = tuple(taps)
        return fn

    return decorate


def get(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown backbone: backbone={name!r}. Available: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def available():
    """The names of the registered backbones."""
    return sorted(_REGISTRY)


def taps(name):
    """The layers of backbone `name` (at its default options) that a head may read
    with `Task(tap=...)`, shallow to deep; the trunk's output is `tap=None`."""
    get(name)
    return list(_TAPS[name])


def renamed_copy(model, prefix):
    """A copy of a layer or functional model with every layer's name prefixed, and
    newly initialised weights."""
    def clone(layer):
        config = layer.get_config()
        config["name"] = prefix + layer.name
        return layer.__class__.from_config(config)

    if isinstance(model, keras.Model):
        return keras.models.clone_model(model, clone_function=clone)
    return clone(model)
