"""COSMOS: linear scalarisation with a cosine penalty towards a preference ray."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_floats, check_task_count
from keras_mtl.weighting.base import Weighting, present_mask, safe_norm
from keras_mtl.weighting.registry import register


@register("cosmos")
@keras.saving.register_keras_serializable(package="keras_mtl")
class COSMOS(Weighting):
    """COSMOS's objective: the preference-weighted sum of the losses less `lambda`
    times the cosine between the loss vector and the preference ray,

        objective = sum_k r_k L_k - lambda (r . L) / (||r|| ||L||)

    so that the losses are pulled towards the ray as well as down. The logged weight
    of task k is the objective's derivative in `L_k`:
    `r_k - lambda (r_k / (||r|| ||L||) - cos L_k / ||L||^2)` (it can be negative: a
    task whose loss is too small for the ray is pushed up). An absent task is left out
    of both vectors (the default ray is `1 / K` over the present tasks); the cosine is
    0 where all losses are 0.

    The paper also draws a new ray from a Dirichlet distribution at each step and feeds
    it to the network as an input, to learn the whole Pareto front in one model; that
    is a change of the model, not of the weighting, and is left out: this is the
    objective for one ray.

    Reference: Ruchte, Grabocka, "Scalable Pareto Front Approximation for Deep
    Multi-Objective Learning", ICDM 2021 (equation 4).

    Args:
        cosine_penalty: `lambda` (>= 0; the authors' default is 2, their range
            0.01 to 8).
        preference: the ray `r`, K non-negative numbers not all 0 (None: 1/K each,
            the centre of the simplex the authors' rays are drawn from).

    Example: `model.compile(optimizer="adam", weighting=COSMOS(cosine_penalty=2.0))`
    """

    def __init__(self, cosine_penalty=2.0, preference=None, **kwargs):
        super().__init__(**kwargs)
        self.cosine_penalty = check_float("cosine_penalty", cosine_penalty, minimum=0)
        self.preference = check_floats("preference", preference, minimum=0)
        if self.preference is not None and not any(self.preference):
            raise ValueError(f"preference must have a positive entry. Received: preference={preference!r}")

    def build(self, input_shape):
        super().build(input_shape)
        check_task_count(self, "preference", self.preference, self.num_tasks)

    def combine(self, losses, training=False, present=None):
        mask = ops.cast(present_mask(present, self.num_tasks), losses.dtype)
        if self.preference is None:
            preference = ops.divide_no_nan(mask, ops.sum(mask))
        else:
            preference = mask * ops.convert_to_tensor(self.preference, losses.dtype)
        present_losses = mask * losses
        weighted = ops.sum(preference * present_losses)
        # The cosine of the losses over their largest (a constant in the derivative),
        # so that no division by a tiny or huge norm enters the gradient.
        largest = ops.stop_gradient(ops.max(ops.abs(present_losses)))
        scale = ops.where(largest > 0, largest, 1.0)
        scaled = present_losses / scale
        preference_norm, scaled_norm = safe_norm(preference), safe_norm(scaled)
        cosine = ops.divide_no_nan(ops.sum(preference * scaled), preference_norm * scaled_norm)
        objective = weighted - self.cosine_penalty * cosine
        fixed_scaled, fixed_norm, fixed_cosine = (ops.stop_gradient(t) for t in (scaled, scaled_norm, cosine))
        cosine_gradient = (ops.divide_no_nan(preference, preference_norm * fixed_norm)
                           - fixed_cosine * ops.divide_no_nan(fixed_scaled, ops.square(fixed_norm))) / scale
        return objective, ops.stop_gradient(preference - self.cosine_penalty * cosine_gradient)

    def task_weights(self, losses, training=False):
        return self.combine(ops.stop_gradient(losses), training=training)[1]

    def get_config(self):
        config = super().get_config()
        config.update(cosine_penalty=self.cosine_penalty, preference=self.preference)
        return config
