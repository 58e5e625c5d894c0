"""Scale-invariant log-depth loss."""

import keras
from keras import ops

from keras_mtl.losses.masks import depth_map, depth_valid, per_example_mean


@keras.saving.register_keras_serializable(package="keras_mtl")
class ScaleInvariantDepth(keras.losses.Loss):
    """Eigen et al.'s scale-invariant error over each image's valid pixels.

    With `d = log(prediction) - log(label)` over the image's n valid pixels:
    `mean(d^2) - variance_focus * mean(d)^2` (Eigen, Puhrsch and Fergus, "Depth Map
    Prediction from a Single Image using a Multi-Scale Deep Network", NIPS 2014,
    eq. 4; they train with 0.5). `variance_focus=1` ignores a global scale error
    entirely, 0 is the plain squared log error. Labels that are 0, negative or not
    finite add nothing.

    Predictions must be positive depths (use e.g. a softplus or exp output);
    they are clipped at `min_depth` before the logarithm.

    Args:
        variance_focus: lambda in [0, 1].
        min_depth: the smallest depth a prediction is taken to have.
        reduction, name, dtype: as for any Keras loss.
    """

    def __init__(self, variance_focus=0.5, min_depth=1e-3, reduction="sum_over_batch_size",
                 name="scale_invariant_depth", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= variance_focus <= 1.0:
            raise ValueError(f"variance_focus must be in [0, 1]. Received: variance_focus={variance_focus!r}")
        if not min_depth > 0:
            raise ValueError(f"min_depth must be > 0. Received: min_depth={min_depth!r}")
        self.variance_focus = float(variance_focus)
        self.min_depth = float(min_depth)

    def call(self, y_true, y_pred):
        y_true = depth_map(y_true, y_pred)
        valid = depth_valid(y_true)
        log_true = ops.log(ops.where(valid, y_true, 1.0))
        d = ops.log(ops.maximum(y_pred, self.min_depth)) - log_true
        return (per_example_mean(ops.square(d), valid)
                - self.variance_focus * ops.square(per_example_mean(d, valid)))

    def get_config(self):
        return {**super().get_config(), "variance_focus": self.variance_focus,
                "min_depth": self.min_depth}
