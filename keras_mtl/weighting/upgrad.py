"""UPGrad: the sum of the task gradients, each projected onto the dual cone of all."""

import keras
from keras import ops

from keras_mtl.weighting.dual_cone import DualConeWeighting
from keras_mtl.weighting.registry import register


@register("upgrad")
@keras.saving.register_keras_serializable(package="keras_mtl")
class UPGrad(DualConeWeighting):
    """UPGrad (unconflicting projection of gradients): project each task gradient onto
    the dual cone of the task gradients (the directions that decrease no task's loss
    less than 0, `J x >= 0`), then sum the projections.

    `combined = sum_i pi_J(g_i) = sum_i J^T v_i`, with `v_i` the solution of
    `min_v v^T G v` subject to `v >= e_i` (Proposition 1 of the paper), solved exactly
    on the Gramian `G = J J^T` by an active-set method
    (`keras_mtl.weighting.dual_cone`). The update conflicts with no task
    (`g_k . combined >= 0`), is the sum of the gradients when none conflicts, and is 0
    only at a Pareto-stationary point. The logged weights are `sum_i v_i` (all 1
    without conflicts).

    This is the paper's definition with uniform preferences, on the scale of the
    summed gradients: K times TorchJD's `UPGrad()`, which averages the projections
    (and, by default, solves on the Gramian divided by its trace plus `1e-4` times the
    identity, a regularisation the paper's definition does not have).

    Reference: Quinton, Rey, "Jacobian Descent for Multi-Objective Optimization",
    arXiv:2406.16232, 2024.

    Args:
        tolerance: the optimality test's bound, a cosine (scale-free).
        max_iterations: a cap on the solver's active-set steps (None: `10 K + 10`).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="upgrad")`
    """

    def bounds(self, present):
        return ops.eye(self.num_tasks) * ops.cast(present, keras.config.floatx())[:, None]
