"""The one place keras_mtl imports from private Keras and TensorFlow modules or
calls a private TensorFlow method.

Keras keeps these helpers in private modules; wrapping them here keeps a Keras or
TensorFlow upgrade to a one-file change.
"""

import contextlib
import weakref

from keras.src.backend.common.global_state import set_global_attribute
from keras.src.losses.loss import scale_loss_for_distribution
from keras.src.losses.losses import LossFunctionWrapper
from keras.src.losses.loss import unscale_loss_for_distribution
from keras.src.models.functional import Functional
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight
from keras.src.utils.python_utils import is_default
from keras.src.utils.tracking import is_tracking_enabled, no_automatic_dependency_tracking

__all__ = [
    "automatic_dependency_tracking",
    "Functional",
    "IteratorCall",
    "is_default",
    "LossFunctionWrapper",
    "no_automatic_dependency_tracking",
    "scale_loss_for_distribution",
    "unpack_x_y_sample_weight",
    "unscale_loss_for_distribution",
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


class IteratorCall:
    """Calls the `tf.function` `function(iterator)` on the same `tf.data` iterator
    again and again, as `function(iterator)` does, but without `tf.function`'s
    per-call matching of the argument against its traces.

    The first call on an iterator goes through `function`; later calls on it run
    the concrete function traced for it through `ConcreteFunction._call_flat`,
    which is where every `tf.function` call ends (TensorFlow's
    `tracing_compilation.call_function`). The matching hashes the iterator's
    element spec at every call: 0.1-0.3 ms of a 1 ms step of a small model. The
    skipped calls still count in TensorFlow's "triggered tf.function retracing"
    warning, which compares traces to calls.
    """

    def __init__(self, function):
        from tensorflow.python.eager.polymorphic_function import polymorphic_function

        self.function = function
        self._iterator = None  # weak reference: an iterator lives for one epoch
        self._concrete = None
        detectors = getattr(polymorphic_function, "_frequent_tracing_detector_manager", None)
        key = getattr(function, "_key_for_call_stats", None)
        if detectors is not None and key is not None:
            self._count_call = lambda: detectors.called_without_tracing(key)
        else:
            self._count_call = lambda: None

    def __call__(self, iterator):
        import tensorflow as tf

        if not tf.executing_eagerly() or tf.config.functions_run_eagerly():
            return self.function(iterator)
        if self._iterator is None or self._iterator() is not iterator:
            outputs = self.function(iterator)
            self._concrete = self.function.get_concrete_function(iterator)
            self._iterator = weakref.ref(iterator)
            return outputs
        concrete = self._concrete
        self._count_call()
        return concrete._call_flat(tf.nest.flatten(iterator, expand_composites=True),
                                   concrete.captured_inputs)
