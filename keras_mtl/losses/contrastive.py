"""DeepID2's contrastive verification loss on all pairs of a batch."""

import keras
from keras import ops

from keras_mtl.losses.pairwise import (BatchLoss, pair_masks, per_example_values, safe_sqrt,
                                       squared_distances)
from keras_mtl.weighting._checks import check_float


@keras.saving.register_keras_serializable(package="keras_mtl")
class ContrastiveLoss(BatchLoss):
    """Contrastive verification loss over every pair of examples in the batch.

    The verification signal of DeepID2 (Sun, Chen, Wang, Tang, "Deep Learning Face
    Representation by Joint Identification-Verification", NIPS 2014, Eq. 2): for
    embeddings `f_i, f_j`,

        1/2 ||f_i - f_j||^2                    same identity,
        1/2 max(0, m - ||f_i - f_j||)^2        different identities.

    The loss is the mean over all unordered pairs `i < j` of the batch whose
    examples both have a sample weight > 0 (an unlabelled example, weight 0, is in
    no pair). Per example it returns `v_i`, anchor i's pair terms summed and scaled
    so that the model's masked mean `sum_i w_i v_i / sum_i w_i` is the mean over the
    pairs, each ordered pair `(i, j)` weighted by `w_i` (with 0/1 masks: the plain
    mean over valid pairs). A batch with no valid pair gives 0. Under
    `tf.distribute` the pairs are those within each replica's share of the batch
    (see `TripletLoss`).

    Labels: integer identities `(B,)` or `(B, 1)`; predictions: embeddings `(B, D)`.

    Args:
        margin: `m` > 0, how far apart embeddings of different identities are pushed.
        reduction, name, dtype: as for `keras.losses.Loss`.

    Example:

    ```python
    keras_mtl.Task("verification", loss=keras_mtl.losses.ContrastiveLoss(margin=1.0),
                   head=[keras.layers.GlobalAveragePooling2D(),
                         keras_mtl.layers.EmbeddingHead(64)])
    ```
    """

    def __init__(self, margin=1.0, reduction="sum_over_batch_size", name="contrastive_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_float("margin", margin, above=0)

    def values(self, labels, embeddings, weights):
        same, different = pair_masks(labels, weights)
        squared = squared_distances(embeddings)
        pull = 0.5 * squared
        push = 0.5 * ops.square(ops.relu(self.margin - safe_sqrt(squared)))
        terms = ops.where(same, pull, ops.where(different, push, 0.0))
        counts = ops.sum(ops.cast(ops.logical_or(same, different), keras.config.floatx()), axis=1)
        return per_example_values(ops.sum(terms, axis=1), counts, weights)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
