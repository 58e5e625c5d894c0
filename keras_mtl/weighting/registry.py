"""Weighting methods by name."""

_REGISTRY = {}


def register(name):
    """Class decorator: makes a weighting method available as `weighting=name`."""

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"A weighting method named '{name}' is already registered.")
        _REGISTRY[name] = cls
        cls.registered_name = name
        return cls

    return decorate


def get(identifier):
    """Returns a weighting instance for a name, an instance or None (equal)."""
    from keras_mtl.weighting.base import Weighting

    if identifier is None:
        identifier = "equal"
    if isinstance(identifier, Weighting):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _REGISTRY:
            raise ValueError(
                f"Unknown weighting method: weighting={identifier!r}. "
                f"Available: {sorted(_REGISTRY)}"
            )
        cls = _REGISTRY[identifier]
        try:
            return cls()
        except TypeError as e:
            raise ValueError(
                f"weighting={identifier!r} needs arguments ({e}); pass an instance, e.g. "
                f"keras_mtl.weighting.{cls.__name__}(...)"
            ) from None
    raise TypeError(
        "weighting must be a name, a keras_mtl.weighting.Weighting or None. "
        f"Received: weighting={identifier!r}"
    )


def available():
    return sorted(_REGISTRY)
