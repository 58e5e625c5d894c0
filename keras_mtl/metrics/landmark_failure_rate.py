"""Landmark failure rate: the share of errors above a fraction of the inter-ocular distance."""

import keras
from keras import ops

from keras_mtl.metrics.landmark_error import LandmarkMeanError


@keras.saving.register_keras_serializable(package="keras_mtl")
class LandmarkFailureRate(LandmarkMeanError):
    """Failure rate of landmark detection at a normalised-error threshold.

    A landmark fails when its error, divided by the true inter-ocular distance, is
    above `threshold` (TCDCN, Zhang et al. ECCV 2014, counts errors above 10% as
    failures, per landmark). With `per_image=True` an image fails when the mean
    normalised error of its landmarks is above `threshold` (the 300-W convention).

    Args:
        threshold: the normalised error above which a prediction fails (> 0).
        per_image: count failing images instead of failing landmarks.
        left_eye, right_eye: indices of the eye centres among the K landmarks.
        name, dtype: as for any Keras metric.

    Example: `LandmarkFailureRate(threshold=0.1)` on `(batch, 10)` landmarks
    ordered `x1..x5, y1..y5`.
    """

    def __init__(self, threshold=0.1, per_image=False, left_eye=0, right_eye=1,
                 name="landmark_failure_rate", dtype=None):
        super().__init__(left_eye=left_eye, right_eye=right_eye, name=name, dtype=dtype)
        if not float(threshold) > 0:
            raise ValueError(f"threshold must be > 0. Received: threshold={threshold!r}")
        self.threshold = float(threshold)
        self.per_image = bool(per_image)

    def example_values(self, errors):
        if self.per_image:
            errors = ops.mean(errors, axis=-1, keepdims=True)
        return ops.mean(ops.cast(errors > self.threshold, "float32"), axis=-1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "per_image": self.per_image}
