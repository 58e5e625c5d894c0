"""Which given layers a build may use as they are, and copies of Keras objects.

A layer belongs to the first model `keras_mtl.build` puts it in. A later build never
shares it: a layer that came unbuilt (e.g. a head `Dense`, whose weights the first
build created) is replaced by a fresh copy with newly initialised weights; a layer
that came with weights of its own (a trained or built backbone) raises an error, since
neither sharing nor silently re-initialising its weights is what the caller meant.
"""

import weakref

import keras

# layer -> (name of the model it went into, whether it came built)
_OWNERS = weakref.WeakKeyDictionary()


def fresh_copy(value):
    """A new, unbuilt copy of a Keras object (layer, model, metric, optimizer,
    weighting), or of each element of a list or dict of them; other values as they
    are. Weights are newly initialised when the copy is built."""
    if isinstance(value, (list, tuple)):
        return [fresh_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: fresh_copy(v) for k, v in value.items()}
    if hasattr(value, "get_config") and hasattr(value.__class__, "from_config"):
        return value.__class__.from_config(value.get_config())
    return value


def fresh_tasks(tasks):
    """Copies of `tasks` whose head layers are new and unbuilt."""
    return [t.with_head(fresh_copy(t.head)) for t in tasks]


def copy_with_weights(layer):
    """A copy of `layer` (a model is copied with `keras.models.clone_model`) holding
    the same weight values, sharing no variable."""
    if isinstance(layer, keras.Model):
        copy = keras.models.clone_model(layer)
    else:
        copy = fresh_copy(layer)
        if layer.built:
            copy.build_from_config(layer.get_build_config())
    if layer.built:
        copy.set_weights(layer.get_weights())
    return copy


class Claims:
    """The given layers one build uses; they become owned when the build succeeds."""

    def __init__(self):
        self._taken = []
        self._copies = {}

    def take(self, layer, what):
        """`layer` itself when no model owns it, else a fresh copy of it (the same
        copy each time within this build, so that a layer shared between tasks stays
        shared), or a `ValueError` for a layer that came with its own weights. `what`
        names the argument the layer came from, for the error."""
        owner = _OWNERS.get(layer)
        if owner is None:
            self._taken.append((layer, layer.built))
            return layer
        model_name, came_built = owner
        if came_built:
            raise ValueError(
                f"{what} (layer {layer.name!r}) is already part of model {model_name!r} built by "
                "keras_mtl.build; using it again would share its variables between the two "
                "models. Pass a new layer or a copy instead: keras.models.clone_model(layer) for a "
                "model, or layer.__class__.from_config(layer.get_config()), both with newly "
                "initialised weights, followed by copy.set_weights(layer.get_weights()) to start "
                "from the same weights; or, for a backbone, a function input_shape -> model."
            )
        if id(layer) not in self._copies:
            self._copies[id(layer)] = fresh_copy(layer)
        return self._copies[id(layer)]

    def take_head(self, head, task_name):
        """The head a build uses for a task's `head` (a layer, a list of layers, or
        anything else, returned as it is)."""
        what = f"Task '{task_name}': head"
        if isinstance(head, keras.layers.Layer):
            return self.take(head, what)
        if isinstance(head, (list, tuple)):
            return [self.take(h, what) if isinstance(h, keras.layers.Layer) else h for h in head]
        return head

    def commit(self, model_name):
        """Makes `model_name` the owner of every layer taken as it is."""
        for layer, came_built in self._taken:
            _OWNERS.setdefault(layer, (model_name, came_built))
