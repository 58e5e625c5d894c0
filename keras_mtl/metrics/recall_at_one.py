"""Retrieval recall@1 within a batch."""

import keras
from keras import ops

from keras_mtl.losses.pairwise import batch_pairs
from keras_mtl.metrics.pair_ratio import PairRatio


@keras.saving.register_keras_serializable(package="keras_mtl")
class RecallAtOne(PairRatio):
    """Retrieval recall@1: how often an example's nearest neighbour in the batch has
    its identity.

    Each example of the batch is a query against all the others (leave one out),
    by Euclidean distance of the embeddings (the retrieval measure of metric
    learning, e.g. Song et al., "Deep Metric Learning via Lifted Structured Feature
    Embedding", CVPR 2016). Queries with no other example of their identity in the
    batch are left out. Neighbours tied at the nearest distance count in
    expectation of a random choice: the fraction of them with the query's identity.
    Accumulates over batches. Sample weights are masks: an example of weight 0 is
    neither a query nor a neighbour.

    Labels: integer identities `(B,)`; predictions: embeddings `(B, D)`.
    """

    def __init__(self, name="recall_at_1", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def counts(self, y_true, y_pred, sample_weight):
        distances, same, different = batch_pairs(y_true, y_pred, sample_weight)
        neighbour = ops.logical_or(same, different)
        query = ops.any(same, axis=1)
        farthest = ops.max(distances)
        nearest = ops.min(ops.where(neighbour, distances, farthest + 1.0), axis=1, keepdims=True)
        tied = ops.logical_and(neighbour, distances == nearest)
        count = lambda mask: ops.sum(ops.cast(mask, "float64"), axis=1)
        hits = ops.divide_no_nan(count(ops.logical_and(tied, same)), count(tied))
        return ops.sum(ops.where(query, hits, 0.0)), ops.sum(ops.cast(query, "float64"))
