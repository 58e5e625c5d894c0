"""Cross-replica reductions of per-task statistics (TensorFlow distribution strategies).

Inside a train step run by `tf.distribute` each replica sees its share of the global
batch. Weighting methods must see statistics of the global batch (task losses, KPIs,
gradient matrices), so that 2 replicas behave like 1 replica on the same batch.
Without a strategy (one replica), and on other backends than TensorFlow, every
function here returns its input unchanged.
"""

import importlib
import sys

import keras


def _tf():
    """TensorFlow when it is the backend, else None (not imported for other backends)."""
    return importlib.import_module("tensorflow") if keras.backend.backend() == "tensorflow" else None


def is_tf_dataset(data):
    """Whether `data` is a `tf.data.Dataset` (False without TensorFlow imported)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _strategy_replicas():
    """The replica count of the current `tf.distribute` strategy (1 without one, and
    on other backends than TensorFlow): the count by which Keras' loss objects divide."""
    tf = _tf()
    return 1 if tf is None else tf.distribute.get_strategy().num_replicas_in_sync


def _times_replicas(value, power):
    replicas = _strategy_replicas()
    if replicas == 1:
        return value
    return keras.ops.multiply(value, keras.ops.cast(float(replicas) ** power, value.dtype))


def scale_loss(value):
    """A loss divided by the replica count, so that summing the replicas' gradients
    gives the gradient of the global mean (as Keras' own train step scales its loss)."""
    return _times_replicas(value, -1)


def unscale_loss(value):
    """A loss of Keras' loss objects, which divide by the replica count under
    `tf.distribute`, times the replica count."""
    return _times_replicas(value, 1)


def _context():
    """The replica context when several replicas run the step, else None."""
    tf = _tf()
    if tf is None:
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def num_replicas():
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_sum(value):
    """The sum of `value` (a tensor, or a list or other nested structure of tensors,
    reduced in one batched all-reduce) over the replicas (every replica gets the same
    result)."""
    context = _context()
    if context is None:
        return value
    return context.all_reduce(_tf().distribute.ReduceOp.SUM, value)


def replica_concat(value, axis):
    """Concatenates every replica's `value` along `axis` (replica order) and returns
    `(concatenated, start)`, `start` where this replica's part begins along `axis`.
    The replicas' sizes along `axis` may differ."""
    context = _context()
    if context is None:
        return value, 0
    tf = _tf()
    sizes = context.all_gather(tf.shape(value)[axis:axis + 1], axis=0)
    start = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
    gathered = context.all_gather(value, axis=axis)
    shape = list(value.shape)
    shape[axis] = None
    gathered.set_shape(shape)  # all_gather loses the static shape of the other axes
    return gathered, start
