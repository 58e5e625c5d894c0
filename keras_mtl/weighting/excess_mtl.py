"""ExcessMTL: task weights raised by each task's estimated excess risk."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("excess_mtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class ExcessMTL(GradientWeighting):
    """Excess-risk weighting: a task whose loss is still far from its optimum, as a
    diagonal second-order estimate tells, gets more weight.

    Each step accumulates every task's squared gradient, `S_k <- S_k + g_k^2` (per
    entry; the diagonal, AdaGrad-style approximation of the task's Hessian), and
    estimates the task's excess risk `e_k = sum_i g_ki^2 / sqrt(S_ki)` (entries with
    `S_ki = 0` count 0). The first step with `e_k > 0` sets the task's baseline
    `b_k = e_k`; from then on the weights take an exponentiated-gradient step

        w_k <- w_k exp(eta e_k / b_k),   rescaled to sum to K,

    from `w_k = 1` (equal weighting; a task's ratio is 0 on the step that sets its
    baseline, so the first step keeps the weights), and `combined = sum_k w_k g_k`.
    S (K x P, P the number of shared parameters, which `compile` passes), the
    baselines and the weights are Keras weights: saved in `.keras` files and restored
    on resume. An absent task's S_k, b_k and w_k are left as they were and its logged
    weight is 0; the present tasks' weights take the step among themselves and keep
    their total. The authors' code takes `sqrt(S_ki + 1e-7)`, which makes `e_k` of
    gradients near 1e-4 and below depend on that floor; here the estimate is exact.
    A step with a non-finite gradient leaves the state as it was and returns NaN, for
    the step's non-finite check.

    It needs the gradients of the shared parameters: `gradient_mode="representation"`
    (whose rows change size with the batch) is not supported.

    Reference: He, Zhou, Zhao, Tong, "Robust Multi-Task Learning with Excess Risks",
    ICML 2024 (equations 6, 7 and 9); the authors' code is LibMTL's `ExcessMTL`, and
    `robust_step_size=1e-2` is LibMTL's default.

    Args:
        robust_step_size: eta, the step size of the weights (> 0).
        num_shared_parameters: P; `compile` sets it, and the saved config keeps it.

    Example: `model.compile(optimizer="adam", weighting=ExcessMTL(robust_step_size=0.1))`
    """

    GRADIENT_MODES = ("shared_parameters",)

    def __init__(self, robust_step_size=1e-2, gradient_mode="shared_parameters", num_shared_parameters=None,
                 **kwargs):
        if gradient_mode == "representation":
            raise ValueError(
                "ExcessMTL accumulates each task's squared gradient of the shared parameters "
                "between steps, which the representation's gradients (their size changes with "
                f"the batch) cannot give. Received: gradient_mode={gradient_mode!r}")
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.robust_step_size = check_float("robust_step_size", robust_step_size, above=0)
        if num_shared_parameters is not None:
            self.num_shared_parameters = check_int("num_shared_parameters", num_shared_parameters, minimum=1)

    def build(self, input_shape):
        super().build(input_shape)
        self.squared_gradient_sum = self.add_task_parameter_weight("squared_gradient_sum")
        self.baselines = self.add_weight(shape=(self.num_tasks,), initializer="zeros", trainable=False,
                                         aggregation="mean", name="baselines")
        self.task_weights_state = self.add_weight(shape=(self.num_tasks,), initializer="ones", trainable=False,
                                                  aggregation="mean", name="task_weights_state")

    def combine_gradients(self, grads, losses, present=None):
        matrix = ops.cast(grads, keras.config.floatx())
        mask = present_mask(present, self.num_tasks)
        previous_sum = ops.convert_to_tensor(self.squared_gradient_sum)
        previous_baselines = ops.convert_to_tensor(self.baselines)
        previous_weights = ops.convert_to_tensor(self.task_weights_state)
        squares = ops.square(matrix)
        squared_sum = ops.where(mask[:, None], previous_sum + squares, previous_sum)
        root = ops.sqrt(squared_sum)
        excess = ops.sum(ops.where(root > 0, squares / ops.where(root > 0, root, 1.0), 0.0), axis=1)
        baselines = ops.where(ops.logical_and(mask, previous_baselines == 0), excess, previous_baselines)
        ratios = ops.where(previous_baselines > 0, ops.divide_no_nan(excess, baselines), 0.0)
        # The exponentiated step in log space, so that a large ratio saturates instead of overflowing.
        logits = ops.where(mask, ops.log(previous_weights) + self.robust_step_size * ratios, -float("inf"))
        logits = logits - ops.max(logits)
        exponentials = ops.where(mask, ops.exp(ops.where(mask, logits, 0.0)), 0.0)
        total = ops.sum(ops.where(mask, previous_weights, 0.0))
        weights = ops.where(mask, total * exponentials / ops.sum(exponentials), previous_weights)
        finite = ops.logical_and(ops.all(ops.isfinite(squared_sum)), ops.all(ops.isfinite(weights)))
        finite = ops.logical_and(finite, ops.all(ops.isfinite(excess)))
        self.squared_gradient_sum.assign(ops.where(finite, squared_sum, previous_sum))
        self.baselines.assign(ops.where(finite, baselines, previous_baselines))
        self.task_weights_state.assign(ops.where(finite, weights, previous_weights))
        weights = ops.where(mask, weights, 0.0)
        combined = ops.matmul(weights[None, :], ops.where(mask[:, None], matrix, 0.0))[0]
        combined = ops.where(finite, combined, float("nan"))
        return ops.cast(combined, grads.dtype), ops.where(finite, weights, float("nan"))

    def get_config(self):
        config = super().get_config()
        # P, so that a `.keras` file builds the state before `compile` runs.
        config.update(robust_step_size=self.robust_step_size, num_shared_parameters=self.num_shared_parameters)
        return config
