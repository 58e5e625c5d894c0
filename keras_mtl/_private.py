"""The one place keras_mtl imports from private Keras and TensorFlow modules, reads
a private Keras attribute or calls a private TensorFlow method.

Keras keeps these helpers in private modules and attributes; wrapping them here keeps
a Keras or TensorFlow upgrade to a one-file change. Checked on Keras >=3.15.1,<3.16
(setup.py's pin); tests/test_private_access.py checks each helper and fails when the
installed Keras leaves that range.
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


# The functional graph. Keras 3 has no public API for a functional model's call
# events: `keras.Function` exposes `operations`, `inputs` and `outputs`, and an
# `Operation` its first call's `input` and `output`, but a layer called several
# times, the order in which a model runs its calls, and which calls read a layer's
# output are only in private attributes (`Function._nodes_by_depth`,
# `KerasTensor._keras_history`, `Operation._inbound_nodes` / `_outbound_nodes`).
# The helpers below return Keras' `Node`s (keras/src/ops/node.py); the rest of
# keras_mtl reads only the attributes the `Node` docstring documents: `operation`,
# `input_tensors`, `outputs`, `is_input` and `parent_nodes`.

__all__ += ["call_node", "consumers", "graph_nodes", "producer"]


def graph_nodes(function):
    """The calls a functional model (or `keras.Function`) makes, other than its
    inputs, in the order it runs them: a list of `Node`s, deepest first."""
    by_depth = function._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]
            if not node.is_input]


def call_node(node, computed):
    """Calls `node`'s operation again with `node`'s arguments, each symbolic tensor
    `t` among them replaced by `computed[id(t)]`; returns the operation's output."""
    args, kwargs = node.arguments.fill_in(computed)
    return node.operation(*args, **kwargs)


def producer(tensor):
    """`(node, index)`: the call that produced the symbolic `tensor` (for a model
    input, the `Input` layer's node, with `is_input` True) and the tensor's position
    in that call's flattened outputs."""
    history = tensor._keras_history
    return history.operation._inbound_nodes[history.node_index], history.tensor_index


def consumers(operation):
    """The operations whose calls read an output of `operation`, in the order they
    were called: one entry per tensor argument of such a call that `operation`
    produced."""
    return [node.operation for node in operation._outbound_nodes]


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
