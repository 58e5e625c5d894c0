"""MoCo: tracked per-task gradients and weights moved by a gradient step on the simplex."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, row_norms
from keras_mtl.weighting.registry import register


@register("moco")
@keras.saving.register_keras_serializable(package="keras_mtl")
class MoCo(GradientWeighting):
    """Multi-objective gradient correction: each task's gradient is tracked by a moving
    average, and the weights take a step against the tracked gradients' conflict.

    Step t (from 1) rescales each task's gradient to its loss, `h_k = L_k g_k / ||g_k||`
    (0 for a zero gradient), and updates the tracked gradients and the weights

        y_k <- y_k - beta_t (y_k - h_k),            beta_t = beta / t^beta_sigma,
        lambda <- softmax(lambda - gamma_t (Y Y^T + rho I) lambda),
                                                    gamma_t = gamma / t^gamma_sigma,

    from `y_k = 0` and `lambda = 1/K`; the update is `combined = Y^T lambda`, and the
    logged weights are `lambda`. Y (K x P, P the number of shared parameters, which
    `compile` passes), lambda and t are Keras weights: saved in `.keras` files and
    restored on resume. An absent task's `y_k` and `lambda_k` are left as they were and
    its logged weight is 0; the present tasks' weights take the step among themselves
    (their rows of Y, a softmax over them) and keep their total. The authors' code
    divides by `||g_k|| + 1e-8`, which shrinks the gradients whose norm is near 1e-8;
    here the division is exact. A step with a non-finite gradient leaves the state as
    it was and returns NaN, for the step's non-finite check.

    It needs the gradients of the shared parameters: `gradient_mode="representation"`
    (whose rows change size with the batch) is not supported.

    Reference: Fernando, Shen, Liu, Chaudhury, Murugesan, Chen, "Mitigating Gradient
    Bias in Multi-objective Learning: A Provably Convergent Approach", ICLR 2023; the
    authors' code is LibMTL's `MoCo`, whose defaults these are.

    Args:
        beta: the tracking rate of the gradients, in [0, 1].
        beta_sigma: its decay with the step, `beta / t^beta_sigma` (>= 0).
        gamma: the step size of the weights (>= 0).
        gamma_sigma: its decay with the step, `gamma / t^gamma_sigma` (>= 0).
        rho: the l2 regularisation of the weights' step (>= 0).
        num_shared_parameters: P; `compile` sets it, and the saved config keeps it.

    Example: `model.compile(optimizer="adam", weighting=MoCo(gamma=0.1))`
    """

    GRADIENT_MODES = ("shared_parameters",)

    def __init__(self, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0,
                 gradient_mode="shared_parameters", num_shared_parameters=None, **kwargs):
        if gradient_mode == "representation":
            raise ValueError(
                "MoCo tracks each task's gradient of the shared parameters between steps, "
                "which the representation's gradients (their size changes with the batch) "
                f"cannot give. Received: gradient_mode={gradient_mode!r}")
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.beta = check_float("beta", beta, minimum=0, maximum=1)
        self.beta_sigma = check_float("beta_sigma", beta_sigma, minimum=0)
        self.gamma = check_float("gamma", gamma, minimum=0)
        self.gamma_sigma = check_float("gamma_sigma", gamma_sigma, minimum=0)
        self.rho = check_float("rho", rho, minimum=0)
        if num_shared_parameters is not None:
            self.num_shared_parameters = check_int("num_shared_parameters", num_shared_parameters, minimum=1)

    def build(self, input_shape):
        super().build(input_shape)
        self.tracked_gradients = self.add_task_parameter_weight("tracked_gradients")
        self.lambdas = self.add_weight(
            shape=(self.num_tasks,), initializer=keras.initializers.Constant(1.0 / self.num_tasks),
            trainable=False, aggregation="mean", name="lambdas")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, aggregation="mean",
                                     name="steps")

    def combine_gradients(self, grads, losses, present=None):
        matrix = ops.cast(grads, keras.config.floatx())
        mask = present_mask(present, self.num_tasks)
        losses = ops.cast(ops.stop_gradient(losses), matrix.dtype)
        # Each row over its largest entry first, so that no norm is near the underflow.
        largest = ops.max(ops.abs(matrix), axis=1)
        scaled = matrix / ops.where(largest > 0, largest, 1.0)[:, None]
        rescaled = scaled * ops.divide_no_nan(losses, row_norms(scaled))[:, None]
        previous = ops.convert_to_tensor(self.tracked_gradients)
        previous_lambdas = ops.convert_to_tensor(self.lambdas)
        steps = self.steps + 1.0
        beta = self.beta / ops.power(steps, self.beta_sigma)
        gamma = self.gamma / ops.power(steps, self.gamma_sigma)
        tracked = ops.where(mask[:, None], previous - beta * (previous - rescaled), previous)
        present_tracked = ops.where(mask[:, None], tracked, 0.0)
        present_lambdas = ops.where(mask, previous_lambdas, 0.0)
        step = ops.matmul(present_tracked, ops.matmul(present_lambdas[None, :], present_tracked)[0])
        logits = ops.where(mask, previous_lambdas - gamma * (step + self.rho * present_lambdas), -float("inf"))
        logits = logits - ops.max(logits)
        exponentials = ops.where(mask, ops.exp(ops.where(mask, logits, 0.0)), 0.0)
        total = ops.sum(present_lambdas)
        lambdas = ops.where(mask, total * exponentials / ops.sum(exponentials), previous_lambdas)
        finite = ops.logical_and(ops.all(ops.isfinite(tracked)), ops.all(ops.isfinite(lambdas)))
        self.tracked_gradients.assign(ops.where(finite, tracked, previous))
        self.lambdas.assign(ops.where(finite, lambdas, previous_lambdas))
        self.steps.assign(ops.where(finite, steps, ops.convert_to_tensor(self.steps)))
        weights = ops.where(mask, lambdas, 0.0)
        combined = ops.matmul(weights[None, :], present_tracked)[0]
        combined = ops.where(finite, combined, float("nan"))
        return ops.cast(combined, grads.dtype), ops.where(finite, weights, float("nan"))

    def get_config(self):
        config = super().get_config()
        # P, so that a `.keras` file builds the state before `compile` runs.
        config.update(beta=self.beta, beta_sigma=self.beta_sigma, gamma=self.gamma, gamma_sigma=self.gamma_sigma,
                      rho=self.rho, num_shared_parameters=self.num_shared_parameters)
        return config
