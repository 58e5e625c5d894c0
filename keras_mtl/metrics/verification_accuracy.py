"""Verification accuracy of pair distances at a threshold."""

import keras
from keras import ops

from keras_mtl.losses.pairwise import batch_pairs
from keras_mtl.metrics.pair_ratio import PairRatio
from keras_mtl.weighting._checks import check_float


@keras.saving.register_keras_serializable(package="keras_mtl")
class VerificationAccuracy(PairRatio):
    """Fraction of the pairs in a batch correctly verified at a distance threshold.

    Every unordered pair of examples in a batch is a trial, judged "same identity"
    when the Euclidean distance of their embeddings is `<= threshold` (DeepID2's
    face verification, Sun et al., NIPS 2014, with a fixed threshold; LFW picks it
    on held-out folds). Accumulates correct and total pairs over batches. Sample
    weights are masks: an example of weight 0 is in no pair.

    Labels: integer identities `(B,)`; predictions: embeddings `(B, D)`.

    Args:
        threshold: the largest distance (>= 0) judged "same identity".
    """

    def __init__(self, threshold=1.0, name="verification_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = check_float("threshold", threshold, minimum=0)

    def counts(self, y_true, y_pred, sample_weight):
        distances, same, different = batch_pairs(y_true, y_pred, sample_weight, unordered=True)
        accepted = distances <= self.threshold
        correct = ops.logical_or(ops.logical_and(same, accepted),
                                 ops.logical_and(different, ops.logical_not(accepted)))
        return (ops.sum(ops.cast(correct, "float64")),
                ops.sum(ops.cast(ops.logical_or(same, different), "float64")))

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
