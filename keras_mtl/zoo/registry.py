"""Zoo constructors by name."""

_REGISTRY = {}


def register(name):
    """Decorator: makes a model constructor available as `keras_mtl.zoo.get(name)`."""

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"A zoo model named '{name}' is already registered.")
        _REGISTRY[name] = fn
        return fn

    return decorate


def available():
    """The names of the zoo's models."""
    return sorted(_REGISTRY)


def get(name):
    """The constructor of zoo model `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown zoo model: name={name!r}. Available: {available()}")
    return _REGISTRY[name]
