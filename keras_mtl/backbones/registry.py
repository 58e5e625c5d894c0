"""Backbone constructors by name."""

_REGISTRY = {}


def register(name):
    """Decorator: makes a backbone constructor available as `backbone=name`."""

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"A backbone named '{name}' is already registered.")
        _REGISTRY[name] = fn
        return fn

    return decorate


def get(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown backbone: backbone={name!r}. Available: {sorted(_REGISTRY)}")
    return _REGISTRY[name]
