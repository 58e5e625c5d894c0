"""PBI: penalty-based boundary intersection of the task losses."""

import keras
import numpy as np
from keras import ops

from keras_mtl.weighting._checks import check_float, check_floats, check_task_count
from keras_mtl.weighting.base import Weighting, present_mask, safe_norm
from keras_mtl.weighting.registry import register


@register("pbi")
@keras.saving.register_keras_serializable(package="keras_mtl")
class PBI(Weighting):
    """Penalty-based boundary intersection: the loss vector's distance along a
    preference ray plus `theta` times its distance from the ray.

    With `f = L - z` (the losses less the reference point) and `u = w / ||w||` the
    unit preference ray:

        d1 = f . u,    d2 = ||f - d1 u||,    objective = d1 + theta d2

    The logged weight of task k is the objective's derivative in `L_k`:
    `u_k + theta (f - d1 u)_k / d2`. On the ray, where `d2` has no derivative, and
    within the rounding of `f - d1 u` of it (`d2 <= 10 K eps ||f||`, eps of the
    losses' dtype), `d2` counts as 0 and so does its derivative. An absent task is left out of `f` and of `u` (the ray
    is renormalised over the present tasks).

    Reference: Zhang, Li, "MOEA/D: A Multiobjective Evolutionary Algorithm Based
    on Decomposition", IEEE Transactions on Evolutionary Computation, 2007
    (section III-C).

    Args:
        theta: the penalty on the distance from the ray (>= 0; the paper's is 5).
        preference: the ray `w`, K non-negative numbers not all 0 (None: all 1).
        reference: the reference point `z`, K numbers, a lower bound of the
            losses (None: 0, which losses are bounded by).

    Example: `model.compile(optimizer="adam", weighting=PBI(theta=5.0, preference=[1.0, 2.0]))`
    """

    def __init__(self, theta=5.0, preference=None, reference=None, **kwargs):
        super().__init__(**kwargs)
        self.theta = check_float("theta", theta, minimum=0)
        self.preference = check_floats("preference", preference, minimum=0)
        if self.preference is not None and not any(self.preference):
            raise ValueError(f"preference must have a positive entry. Received: preference={preference!r}")
        self.reference = check_floats("reference", reference)

    def build(self, input_shape):
        super().build(input_shape)
        check_task_count(self, "preference", self.preference, self.num_tasks)
        check_task_count(self, "reference", self.reference, self.num_tasks)

    def combine(self, losses, training=False, present=None):
        mask = ops.cast(present_mask(present, self.num_tasks), losses.dtype)
        preference = mask * (1.0 if self.preference is None
                             else ops.convert_to_tensor(self.preference, losses.dtype))
        ray = ops.divide_no_nan(preference, safe_norm(preference))
        reference = 0.0 if self.reference is None else ops.convert_to_tensor(self.reference, losses.dtype)
        shifted = mask * (losses - reference)
        along = ops.sum(shifted * ray)
        across = shifted - along * ray
        # Closer to the ray than the rounding of `across`, its direction is noise.
        epsilon = float(np.finfo(keras.backend.standardize_dtype(losses.dtype)).eps)
        distance = safe_norm(across)
        distance = ops.where(distance > 10.0 * self.num_tasks * epsilon * safe_norm(shifted), distance, 0.0)
        objective = along + self.theta * distance
        weights = ray + self.theta * ops.divide_no_nan(ops.stop_gradient(across), ops.stop_gradient(distance))
        return objective, ops.stop_gradient(weights)

    def task_weights(self, losses, training=False):
        return self.combine(ops.stop_gradient(losses), training=training)[1]

    def get_config(self):
        config = super().get_config()
        config.update(theta=self.theta, preference=self.preference, reference=self.reference)
        return config
