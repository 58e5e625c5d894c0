"""TensorFlow for the features that need it (the `tf.data` pipelines of
`keras_mtl.datasets`, SavedModel export), imported when first used, so that
`import keras_mtl` on the JAX backend does not import it."""

import importlib


def require_tensorflow(feature):
    """The `tensorflow` module; an `ImportError` naming `feature` when it is not installed."""
    try:
        return importlib.import_module("tensorflow")
    except ImportError as error:
        raise ImportError(
            f"{feature} needs TensorFlow, which is not installed. Install it with "
            "`pip install tensorflow-cpu` (or keras_mtl's `cpu` extra); training itself "
            "runs without it on the JAX backend.") from error


class LazyTensorFlow:
    """Stands for the `tensorflow` module in a module whose functions need it:
    `tf = LazyTensorFlow("feature")` at module level, `tf.data...` in the functions;
    the first attribute read imports TensorFlow."""

    def __init__(self, feature):
        self._feature = feature

    def __getattr__(self, name):
        return getattr(require_tensorflow(self._feature), name)

    def __repr__(self):
        return f"LazyTensorFlow({self._feature!r})"
