"""Landmark error normalised by the inter-ocular distance (TCDCN's mean error)."""

import keras
from keras import ops


def normalized_landmark_errors(y_true, y_pred, left_eye=0, right_eye=1):
    """Per-landmark Euclidean errors divided by the true inter-ocular distance.

    Args:
        y_true, y_pred: landmarks of shape `(batch, 2K)`, the K x coordinates then the
            K y coordinates (the MTFL / TCDCN order `x1..xK, y1..yK`).
        left_eye, right_eye: indices (0..K-1) of the two eye centres.

    Returns:
        A `(batch, K)` tensor of errors.
    """
    y_true = ops.convert_to_tensor(y_true, "float32")
    y_pred = ops.convert_to_tensor(y_pred, "float32")
    count = y_true.shape[-1] // 2
    true_x, true_y = y_true[:, :count], y_true[:, count:]
    error = ops.sqrt(ops.square(y_pred[:, :count] - true_x) + ops.square(y_pred[:, count:] - true_y))
    ocular = ops.sqrt(ops.square(true_x[:, left_eye] - true_x[:, right_eye])
                      + ops.square(true_y[:, left_eye] - true_y[:, right_eye]))
    return error / ops.expand_dims(ocular, -1)


def check_landmark_args(left_eye, right_eye):
    for arg, value in (("left_eye", left_eye), ("right_eye", right_eye)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{arg} must be a landmark index >= 0. Received: {arg}={value!r}")
    if left_eye == right_eye:
        raise ValueError(
            f"left_eye and right_eye must differ. Received: left_eye={left_eye}, right_eye={right_eye}"
        )


@keras.saving.register_keras_serializable(package="keras_mtl")
class LandmarkMeanError(keras.metrics.Metric):
    """Mean landmark error normalised by the inter-ocular distance.

    The Euclidean distance between each predicted and true landmark, divided by the
    distance between the true eye centres, averaged over landmarks and examples
    (Zhang et al., "Facial Landmark Detection by Deep Multi-task Learning",
    ECCV 2014). A sample weight weighs an example's landmarks.

    Args:
        left_eye, right_eye: indices of the eye centres among the K landmarks.
        name, dtype: as for any Keras metric.

    Example:

    ```python
    metric = LandmarkMeanError()
    metric.update_state(true_xy, predicted_xy)  # (batch, 10): x1..x5, y1..y5
    ```
    """

    def __init__(self, left_eye=0, right_eye=1, name="landmark_mean_error", dtype=None):
        super().__init__(name=name, dtype=dtype)
        check_landmark_args(left_eye, right_eye)
        self.left_eye = left_eye
        self.right_eye = right_eye
        self.total = self.add_variable((), "zeros", dtype="float32", name="total")
        self.count = self.add_variable((), "zeros", dtype="float32", name="count")

    def example_values(self, errors):
        """Maps the `(batch, K)` normalised errors to one value per example."""
        return ops.mean(errors, axis=-1)

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self.example_values(
            normalized_landmark_errors(y_true, y_pred, self.left_eye, self.right_eye))
        weight = ops.ones_like(values) if sample_weight is None else ops.reshape(
            ops.cast(sample_weight, "float32"), (-1,))
        self.total.assign_add(ops.sum(values * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "left_eye": self.left_eye, "right_eye": self.right_eye}
