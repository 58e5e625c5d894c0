"""ROC-AUC of verification by pair distance."""

import keras
from keras import ops

from keras_mtl.losses.pairwise import batch_pairs
from keras_mtl.metrics.pair_ratio import PairRatio


@keras.saving.register_keras_serializable(package="keras_mtl")
class PairDistanceAUC(PairRatio):
    """Area under the ROC curve of face/identity verification by embedding distance.

    Every unordered pair of examples in a batch is a verification trial: "same
    identity" is the positive class and a smaller Euclidean distance the higher
    score (the LFW protocol of DeepID2, Sun et al., NIPS 2014). The AUC is the
    Mann-Whitney statistic: the fraction of (positive pair, negative pair)
    combinations in which the positive pair is closer, ties counting one half;
    exact, with no thresholds. Over several batches it accumulates the counts, so
    it is the AUC over the pairs within batches (evaluate a whole set as one batch
    for the AUC over all its pairs). Sample weights are masks: an example of weight
    0 is in no pair. Cost per batch: `O(B^2 log B)`.

    Labels: integer identities `(B,)`; predictions: embeddings `(B, D)`.

    Example:

    ```python
    keras_mtl.Task("verification", loss=keras_mtl.losses.ContrastiveLoss(),
                   head=keras_mtl.layers.EmbeddingHead(64), metrics=[PairDistanceAUC()])
    ```
    """

    def __init__(self, name="pair_distance_auc", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def counts(self, y_true, y_pred, sample_weight):
        distances, same, different = batch_pairs(y_true, y_pred, sample_weight, unordered=True)
        distances = ops.reshape(distances, (-1,))
        positive = ops.cast(ops.reshape(same, (-1,)), "float64")
        # Non-negative pairs sort first at -inf, below every distance.
        negatives = ops.sort(ops.where(ops.reshape(different, (-1,)), distances, float("-inf")))
        after = ops.cast(ops.searchsorted(negatives, distances, side="right"), "float64")
        before = ops.cast(ops.searchsorted(negatives, distances, side="left"), "float64")
        size = ops.cast(ops.shape(distances)[0], "float64")
        farther = size - after
        ordered = ops.sum(positive * (farther + 0.5 * (after - before)))
        return ordered, ops.sum(positive) * ops.sum(ops.cast(different, "float64"))
