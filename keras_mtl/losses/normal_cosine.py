"""Surface-normal loss: one minus the cosine similarity."""

import keras
from keras import ops

from keras_mtl.losses.masks import normals_valid, per_example_mean, unit_vectors


@keras.saving.register_keras_serializable(package="keras_mtl")
class NormalCosine(keras.losses.Loss):
    """`1 - cos(angle)` between L2-normalised predicted and true normals, averaged
    over each image's valid pixels.

    The normal loss of MTAN (Liu et al., CVPR 2019; Eigen and Fergus, ICCV 2015 use
    its negative dot product). Zero or non-finite label vectors are missing normals
    and add nothing. Predictions need not be unit length: they are normalised here.

    Labels and predictions `(B, H, W, 3)`.

    Example:

    ```python
    keras_mtl.Task("normals", head=keras.layers.Conv2D(3, 1), loss=NormalCosine())
    ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="normal_cosine", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        valid = normals_valid(y_true)
        y_true = unit_vectors(ops.where(ops.isfinite(y_true), y_true, 0.0))
        cosine = ops.sum(unit_vectors(y_pred) * y_true, axis=-1)
        return per_example_mean(1.0 - cosine, valid)
