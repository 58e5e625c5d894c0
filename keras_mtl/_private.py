"""The one place keras_mtl imports from private Keras and TensorFlow modules or
calls a private TensorFlow method.

Keras keeps these helpers in private modules; wrapping them here keeps a Keras or
TensorFlow upgrade to a one-file change.
"""

import contextlib

from keras.src.backend.common.global_state import set_global_attribute
from keras.src.models.functional import Functional
from keras.src.utils.tracking import is_tracking_enabled, no_automatic_dependency_tracking

__all__ = [
    "automatic_dependency_tracking",
    "Functional",
    "no_automatic_dependency_tracking",
]


@contextlib.contextmanager
def automatic_dependency_tracking():
    """Keras' attribute tracking, on again inside `no_automatic_dependency_tracking`
    (where `Model.compile` runs): a layer created or built here tracks its own seed
    generators and sublayers, as one created anywhere else does."""
    original = is_tracking_enabled()
    set_global_attribute("tracking_on", True)
    try:
        yield
    finally:
        set_global_attribute("tracking_on", original)

