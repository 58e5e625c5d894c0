"""Pairs within a batch, shared by the metric-learning losses and metrics: identity
labels, embeddings, pairwise distances, which pairs are valid, and the per-example
values that make Keras' weighted batch mean equal a mean over pairs or triplets.

An example takes part in pairs only when its sample weight is > 0 (the model passes
each task's mask as its sample weight); an example of weight 0 is in no pair.
"""

import keras
from keras import ops


def identity_labels(y_true):
    """Integer identity labels of shape `(B,)` from `(B,)` or `(B, 1)` labels."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    if len(y_true.shape) != 1:
        raise ValueError(f"Identity labels must have shape (batch,) or (batch, 1). "
                         f"Received: y_true.shape={tuple(y_true.shape)}")
    return ops.cast(y_true, "int32")


def embedding_matrix(y_pred):
    """Embeddings `(B, D)` in floatx (mixed-precision outputs are cast up)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) != 2:
        raise ValueError(f"Embeddings must have shape (batch, dim). "
                         f"Received: y_pred.shape={tuple(y_pred.shape)}")
    return ops.cast(y_pred, keras.config.floatx())


def example_weights(sample_weight, batch_size):
    """Weights `(B,)` (floatx): the sample weights, or ones when there are none."""
    if sample_weight is None:
        return ops.ones((batch_size,), keras.config.floatx())
    return ops.reshape(ops.cast(ops.convert_to_tensor(sample_weight), keras.config.floatx()), (batch_size,))


def squared_distances(embeddings):
    """`(B, B)` squared Euclidean distances, from the differences (exact at 0,
    unlike `|a|^2 + |b|^2 - 2 a.b`); memory `B^2 D`."""
    differences = ops.expand_dims(embeddings, 1) - ops.expand_dims(embeddings, 0)
    return ops.sum(ops.square(differences), axis=-1)


def safe_sqrt(squared):
    """`sqrt` with a zero gradient at 0 (where `sqrt`'s is infinite)."""
    positive = squared > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, squared, 1.0)), 0.0)


def pair_masks(labels, weights):
    """`(same, different)`: `(B, B)` booleans of the pairs `(i, j)`, `i != j`, both of
    weight > 0, with the same or different labels."""
    valid = weights > 0
    both = ops.logical_and(ops.expand_dims(valid, 1), ops.expand_dims(valid, 0))
    both = ops.logical_and(both, ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool")))
    equal = ops.expand_dims(labels, 1) == ops.expand_dims(labels, 0)
    return ops.logical_and(both, equal), ops.logical_and(both, ops.logical_not(equal))


def per_example_values(sums, counts, weights):
    """Per-example values `v_i = s_i W / sum_j w_j c_j` (`W = sum_j w_j`), 0 for all
    when no example has a term.

    `s_i` is the sum of anchor i's terms (pairs or triplets), `c_i` how many there
    are. Keras' batch mean of `w_i v_i` over the weights, `sum_i w_i v_i / W`, is then
    `sum_i w_i s_i / sum_i w_i c_i`: the mean over all terms in the batch, each term
    weighted by its anchor's weight.
    """
    scale = ops.divide_no_nan(ops.sum(weights), ops.sum(weights * counts))
    return sums * ops.stop_gradient(scale)


def batch_pairs(y_true, y_pred, sample_weight=None, unordered=False):
    """`(distances, same, different)` of a batch for the pair metrics: Euclidean
    distances `(B, B)` and the masks of `pair_masks` (sample weights as masks),
    with `unordered` only the pairs `i < j`."""
    labels, embeddings = identity_labels(y_true), embedding_matrix(y_pred)
    weights = example_weights(sample_weight, ops.shape(labels)[0])
    same, different = pair_masks(labels, weights)
    if unordered:
        upper = ops.triu(ops.ones(ops.shape(same), "int32"), 1) > 0
        same, different = ops.logical_and(same, upper), ops.logical_and(different, upper)
    return safe_sqrt(squared_distances(embeddings)), same, different


class BatchLoss(keras.losses.Loss):
    """A loss that reads the whole batch: `values(labels, embeddings, weights)`
    returns per-example values `(B,)` from which the sample weights (masks) already
    removed the examples of weight 0; `__call__` then reduces them with the weights
    as Keras does (by default the sum of `w_i v_i` over the batch size)."""

    def values(self, labels, embeddings, weights):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        # `__call__` hands the mining weights over with the labels.
        y_true, weights = y_true if isinstance(y_true, tuple) else (y_true, None)
        labels, embeddings = identity_labels(y_true), embedding_matrix(y_pred)
        if weights is None:
            weights = example_weights(None, ops.shape(labels)[0])
        return self.values(labels, embeddings, weights)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras passes sample weights to the reduction, not to `call`; mining needs
        # them to leave the examples of weight 0 out of every pair.
        if sample_weight is None:
            return super().__call__(y_true, y_pred)
        weights = example_weights(sample_weight, ops.shape(identity_labels(y_true))[0])
        return super().__call__((y_true, weights), y_pred, sample_weight=weights)
