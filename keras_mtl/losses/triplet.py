"""Triplet loss with batch-hard or batch-all mining."""

import keras
from keras import ops

from keras_mtl.losses.masks import unit_vectors
from keras_mtl.losses.pairwise import (BatchLoss, pair_masks, per_example_values, safe_sqrt,
                                       squared_distances)
from keras_mtl.weighting._checks import check_float

MINING = ("batch_hard", "batch_all")


@keras.saving.register_keras_serializable(package="keras_mtl")
class TripletLoss(BatchLoss):
    """Triplet loss on triplets mined within the batch.

    For an anchor a, a positive p (same identity, p != a) and a negative n
    (another identity), the term is `max(0, margin + d(a, p) - d(a, n))`, or
    `softplus(d(a, p) - d(a, n))` with `soft_margin=True` (Schroff, Kalenichenko,
    Philbin, "FaceNet", CVPR 2015; Hermans, Beyer, Leibe, "In Defense of the Triplet
    Loss for Person Re-Identification", arXiv:1703.07737, 2017). Mining:

    - `"batch_hard"`: one term per anchor, with its farthest positive and nearest
      negative in the batch; the loss is the mean over the anchors that have both.
    - `"batch_all"`: every (a, p, n) of the batch; the loss is the mean over the
      active triplets (term > 0), Hermans et al.'s "BA≠0" (with `soft_margin`
      every triplet is active).

    `d` is the Euclidean distance (`squared=True`: its square, as in FaceNet),
    between L2-normalised embeddings when `normalize=True`. Only examples with a
    sample weight > 0 are anchors, positives or negatives (an unlabelled example,
    weight 0, is in no triplet). Per example it returns `v_i`, anchor i's terms
    summed and scaled so that the model's masked mean `sum_i w_i v_i / sum_i w_i` is
    the mean above with each term weighted by its anchor's weight. A batch without
    a triplet gives 0.

    Under `tf.distribute` each replica mines in its own share of the global batch:
    mining in the global batch would cost an all-gather of the `B x D` embeddings
    and `B^2` (batch-all `B^3`) work on every replica per step, where per-replica
    mining costs `(B/R)^2` and no communication. The model then averages the replicas'
    losses, each weighted by its sum of sample weights. Give each replica whole
    identities: `keras_mtl.datasets.pk_batches` lays batches out identity by
    identity, so with P identities per batch and R replicas dividing P, each replica
    gets P/R of them with all their K examples.

    Labels: integer identities `(B,)` or `(B, 1)`; predictions: embeddings `(B, D)`.

    Args:
        mining: "batch_hard" or "batch_all".
        margin: the margin (> 0) of the hinge; unused with `soft_margin`.
        soft_margin: use `softplus` instead of the hinge.
        squared: use squared Euclidean distances.
        normalize: L2-normalise the embeddings first.
        reduction, name, dtype: as for `keras.losses.Loss`.

    Example:

    ```python
    keras_mtl.Task("verification", loss=keras_mtl.losses.TripletLoss("batch_hard", margin=0.2),
                   head=[keras.layers.GlobalAveragePooling2D(),
                         keras_mtl.layers.EmbeddingHead(64, normalize=True)])
    ```
    """

    def __init__(self, mining="batch_hard", margin=0.2, soft_margin=False, squared=False,
                 normalize=False, reduction="sum_over_batch_size", name="triplet_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if mining not in MINING:
            raise ValueError(f"mining must be one of {MINING}. Received: mining={mining!r}")
        for arg, value in (("soft_margin", soft_margin), ("squared", squared), ("normalize", normalize)):
            if not isinstance(value, bool):
                raise TypeError(f"{arg} must be True or False. Received: {arg}={value!r}")
        self.mining = mining
        self.margin = check_float("margin", margin, above=0)
        self.soft_margin, self.squared, self.normalize = soft_margin, squared, normalize

    def _hinge(self, difference):
        if self.soft_margin:
            return ops.softplus(difference)
        return ops.relu(self.margin + difference)

    def values(self, labels, embeddings, weights):
        if self.normalize:
            embeddings = unit_vectors(embeddings)
        same, different = pair_masks(labels, weights)
        distances = squared_distances(embeddings)
        if not self.squared:
            distances = safe_sqrt(distances)
        if self.mining == "batch_hard":
            has_triplet = ops.logical_and(ops.any(same, axis=1), ops.any(different, axis=1))
            # Distances are >= 0: 0 never beats a positive, the largest never a negative.
            hardest_positive = ops.max(ops.where(same, distances, 0.0), axis=1)
            farthest = ops.stop_gradient(ops.max(distances))
            hardest_negative = ops.min(ops.where(different, distances, farthest), axis=1)
            terms = ops.where(has_triplet, self._hinge(hardest_positive - hardest_negative), 0.0)
            return per_example_values(terms, ops.cast(has_triplet, keras.config.floatx()), weights)
        # (a, p, n) on axes (0, 1, 2).
        valid = ops.logical_and(ops.expand_dims(same, 2), ops.expand_dims(different, 1))
        difference = ops.expand_dims(distances, 2) - ops.expand_dims(distances, 1)
        terms = ops.where(valid, self._hinge(difference), 0.0)
        active = ops.cast(valid if self.soft_margin else ops.logical_and(valid, terms > 0), keras.config.floatx())
        return per_example_values(ops.sum(terms, axis=(1, 2)), ops.sum(active, axis=(1, 2)), weights)

    def get_config(self):
        return {**super().get_config(), "mining": self.mining, "margin": self.margin,
                "soft_margin": self.soft_margin, "squared": self.squared, "normalize": self.normalize}
