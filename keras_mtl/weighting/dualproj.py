"""DualProj: the summed task gradient projected onto the dual cone of the task gradients."""

import keras
from keras import ops

from keras_mtl.weighting.dual_cone import DualConeWeighting
from keras_mtl.weighting.registry import register


@register("dualproj")
@keras.saving.register_keras_serializable(package="keras_mtl")
class DualProj(DualConeWeighting):
    """DualProj: project the sum of the task gradients onto their dual cone (the
    directions `x` with `J x >= 0`, which decrease no task's loss less than 0), the
    projection of Lopez-Paz and Ranzato's GEM (their equation 11) with every task as a
    constraint.

    `combined = pi_J(J^T 1) = J^T v`, with `v` the solution of `min_v v^T G v`
    subject to `v >= 1` (Proposition 1 of Quinton and Rey), solved exactly on the
    Gramian `G = J J^T` by an active-set method (`keras_mtl.weighting.dual_cone`).
    The logged weights are `v` (all 1 when the summed gradient conflicts with no task).

    On the scale of the summed gradients: K times TorchJD's `DualProj()`, which
    projects the mean gradient (and, by default, solves on the Gramian divided by its
    trace plus `1e-4` times the identity, a regularisation the definition does not
    have).

    References: Quinton, Rey, "Jacobian Descent for Multi-Objective Optimization",
    arXiv:2406.16232, 2024; Lopez-Paz, Ranzato, "Gradient Episodic Memory for
    Continual Learning", NeurIPS 2017.

    Args:
        tolerance: the optimality test's bound, a cosine (scale-free).
        max_iterations: a cap on the solver's active-set steps (None: `10 K + 10`).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="dualproj")`
    """

    def bounds(self, present):
        return ops.cast(present, keras.config.floatx())[None, :]
