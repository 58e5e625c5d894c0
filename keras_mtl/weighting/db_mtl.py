"""DB-MTL: dual balancing of the log-losses' gradients."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, row_norms
from keras_mtl.weighting.registry import register


@register("db_mtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class DBMTL(GradientWeighting):
    """Dual balancing: the losses are balanced by taking their logarithms, the
    gradients by scaling each task's to the largest norm.

    Step t (from 1) keeps a moving average of each task's gradient of its log-loss,
    `m_k <- g_k / (L_k + eps) + beta_t (m_k - g_k / (L_k + eps))` (eps = 1e-8, the
    authors' floor in `log(L_k + eps)`) with
    `beta_t = beta / t^beta_sigma` and `m_k = 0` before the first step, and combines

        combined = sum_k (max_j ||m_j|| / ||m_k||) m_k,

    so that every task's averaged gradient enters with the largest one's norm. The
    logged weight of task k is its scale `max_j ||m_j|| / ||m_k||`. The averages are a
    K x P Keras weight (P the number of shared parameters, which `compile` passes):
    saved in `.keras` files and restored on resume. An absent task's average is left
    as it was and its scale is 0; a task whose average is 0 gets scale 0 (the authors'
    code divides by `||m_k|| + 1e-8`, which also shrinks the scale of gradients whose
    norm is near 1e-8). A step with a non-finite gradient leaves the averages as they
    were and returns NaN, for the step's non-finite check.

    It needs the gradients of the shared parameters: `gradient_mode="representation"`
    (whose rows change size with the batch) is not supported.

    Reference: Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Kwok, "Dual-Balancing for Multi-Task Learning",
    arXiv:2308.12029 (2023); the authors' code is LibMTL's `DB_MTL`, whose defaults
    these are.

    Args:
        beta: the average's weight on the past, in [0, 1].
        beta_sigma: the decay of that weight with the step, `beta / t^beta_sigma`
            (>= 0; 0 keeps it constant).
        num_shared_parameters: P; `compile` sets it, and the saved config keeps it.

    Example: `model.compile(optimizer="adam", weighting=DBMTL(beta=0.9))`
    """

    GRADIENT_MODES = ("shared_parameters",)
    # The authors' floor inside the logarithm of the losses.
    loss_epsilon = 1e-8

    def __init__(self, beta=0.9, beta_sigma=0.0, gradient_mode="shared_parameters", num_shared_parameters=None,
                 **kwargs):
        if gradient_mode == "representation":
            raise ValueError(
                "DBMTL keeps an average of each task's gradient of the shared parameters between "
                "steps, which the representation's gradients (their size changes with the batch) "
                f"cannot give. Received: gradient_mode={gradient_mode!r}")
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.beta = check_float("beta", beta, minimum=0, maximum=1)
        self.beta_sigma = check_float("beta_sigma", beta_sigma, minimum=0)
        if num_shared_parameters is not None:
            self.num_shared_parameters = check_int("num_shared_parameters", num_shared_parameters, minimum=1)

    def build(self, input_shape):
        super().build(input_shape)
        self.gradient_average = self.add_task_parameter_weight("gradient_average")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, aggregation="mean",
                                     name="steps")

    def combine_gradients(self, grads, losses, present=None):
        matrix = ops.cast(grads, keras.config.floatx())
        mask = present_mask(present, self.num_tasks)
        losses = ops.cast(ops.stop_gradient(losses), matrix.dtype)
        log_gradients = matrix / (losses + self.loss_epsilon)[:, None]
        previous = ops.convert_to_tensor(self.gradient_average)
        steps = self.steps + 1.0
        rate = self.beta / ops.power(steps, self.beta_sigma)
        average = log_gradients + rate * (previous - log_gradients)
        finite = ops.all(ops.isfinite(average))
        average = ops.where(ops.logical_and(finite, mask[:, None]), average, previous)
        self.gradient_average.assign(average)
        self.steps.assign(ops.where(finite, steps, ops.convert_to_tensor(self.steps)))
        norms = ops.where(mask, row_norms(average), 0.0)
        scales = ops.divide_no_nan(ops.max(norms), norms)
        combined = ops.matmul(scales[None, :], average)[0]
        combined = ops.where(finite, combined, float("nan"))
        return ops.cast(combined, grads.dtype), ops.where(finite, scales, float("nan"))

    def get_config(self):
        config = super().get_config()
        # P, so that a `.keras` file builds the state before `compile` runs.
        config.update(beta=self.beta, beta_sigma=self.beta_sigma, num_shared_parameters=self.num_shared_parameters)
        return config
