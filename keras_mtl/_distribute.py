"""Cross-replica reductions of per-task statistics (TensorFlow distribution strategies).

Inside a train step run by `tf.distribute` each replica sees its share of the global
batch. Weighting methods must see statistics of the global batch (task losses, KPIs,
gradient matrices), so that 2 replicas behave like 1 replica on the same batch.
Without a strategy (one replica) every function here returns its input unchanged.
"""

import tensorflow as tf


def _context():
    """The replica context when several replicas run the step, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def num_replicas():
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_sum(value):
    """The sum of `value` over the replicas (every replica gets the same result)."""
    context = _context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_concat(value, axis):
    """Concatenates every replica's `value` along `axis` (replica order) and returns
    `(concatenated, start)`, `start` where this replica's part begins along `axis`.
    The replicas' sizes along `axis` may differ."""
    context = _context()
    if context is None:
        return value, 0
    sizes = context.all_gather(tf.shape(value)[axis:axis + 1], axis=0)
    start = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
    gathered = context.all_gather(value, axis=axis)
    shape = list(value.shape)
    shape[axis] = None
    gathered.set_shape(shape)  # all_gather loses the static shape of the other axes
    return gathered, start
