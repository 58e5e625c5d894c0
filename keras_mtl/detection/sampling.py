"""Sampled minibatches of anchors as per-anchor sample weights (Faster R-CNN, Sec. 3.1.3)."""

import keras
from keras import ops

from keras_mtl.detection.matching import NEGATIVE, POSITIVE


def _rank(keys):
    """The rank of each entry in its row (0 for the smallest)."""
    return ops.argsort(ops.argsort(keys, axis=-1), axis=-1)


def sample_anchors(labels, num_samples=256, positive_fraction=0.5, seed=None):
    """Draws each image's minibatch of anchors and returns it as sample weights.

    Per image, up to `num_samples * positive_fraction` positive anchors are drawn
    uniformly without replacement, and negatives fill the minibatch up to
    `num_samples` (fewer when the image has fewer), as in Faster R-CNN (Ren et al.,
    NeurIPS 2015, Sec. 3.1.3: 256 anchors, up to half positive). Ignored anchors
    are never drawn.

    Args:
        labels: `(B, A)` anchor labels from `match_anchors` (1, 0, -1).
        num_samples: anchors per image (>= 1).
        positive_fraction: the largest share of positives, in [0, 1].
        seed: an int, a `keras.random.SeedGenerator` or None.

    Returns:
        `(classification_weight, regression_weight)`, `(B, A)` float 0/1: the drawn
        anchors, and the drawn positive anchors. As per-task sample weights, they
        make the objectness loss the mean over the minibatch and the box loss the
        mean over its positives.

    Example:

    ```python
    objectness_weight, box_weight = sample_anchors(labels, seed=0)
    ```
    """
    if int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1. Received: num_samples={num_samples!r}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1]. Received: positive_fraction={positive_fraction!r}")
    labels = ops.convert_to_tensor(labels)
    positive, negative = labels == POSITIVE, labels == NEGATIVE
    keys = keras.random.uniform(ops.shape(labels), seed=seed)
    # Outside the pool a key of 2 ranks after every uniform draw in [0, 1).
    take_positive = ops.minimum(ops.sum(ops.cast(positive, "int32"), axis=-1),
                                int(num_samples * positive_fraction))[:, None]
    chosen_positive = ops.logical_and(positive, _rank(ops.where(positive, keys, 2.0)) < take_positive)
    take_negative = ops.minimum(ops.sum(ops.cast(negative, "int32"), axis=-1)[:, None],
                                int(num_samples) - take_positive)
    chosen_negative = ops.logical_and(negative, _rank(ops.where(negative, keys, 2.0)) < take_negative)
    floatx = keras.config.floatx()
    return (ops.cast(ops.logical_or(chosen_positive, chosen_negative), floatx),
            ops.cast(chosen_positive, floatx))
