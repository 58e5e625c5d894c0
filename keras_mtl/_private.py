"""The one place keras_mtl imports from private Keras modules or reads a private
Keras attribute on its default path. Two documented exceptions live with the
TensorFlow trainer: the opt-in `compile(fast_dispatch=True)`
(`backend/tensorflow/fast_dispatch.py`) and the override of Keras'
`_maybe_symbolic_build` for MultiWorkerMirroredStrategy.

Keras keeps these helpers in private modules and attributes; wrapping them here keeps
a Keras or TensorFlow upgrade to a one-file change. Checked on Keras >=3.15.1,<3.16
(setup.py's pin); tests/test_private_access.py checks each helper and fails when the
installed Keras leaves that range.
"""

import contextlib

from keras.src.backend.common.global_state import set_global_attribute
from keras.src.utils.tracking import is_tracking_enabled, no_automatic_dependency_tracking

__all__ = [
    "automatic_dependency_tracking",
    "no_automatic_dependency_tracking",
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

