"""GradDrop: keep, per coordinate, only the gradients of one sign, chosen at random."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_seed
from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


@register("graddrop")
@keras.saving.register_keras_serializable(package="keras_mtl")
class GradDrop(GradientWeighting):
    """Gradient sign dropout.

    Per coordinate p of the K x P matrix, the sign purity
    `P_p = (1 + sum_k g_kp / sum_k |g_kp|) / 2` (LibMTL adds 1e-7 to the
    denominator, which is not scale-free; here 0/0 gives 1/2); with
    `U_p ~ U(0, 1)`, the positive gradients are kept where `P_p > U_p` and the
    negative ones elsewhere. Each task's gradient is multiplied by
    `leak + (1 - leak) mask` and `combined` is their sum, the sum convention of
    equal weighting, as in LibMTL (with `leak = 1`, exactly the sum).

    The logged weight of task k is the share of its gradient's L1 mass that is
    kept, `sum_p |g_kp| m_kp / sum_p |g_kp|` (GradDrop is not a weighted sum).
    On the shared parameters' gradients the coordinates are parameters (already
    summed over the batch); on a representation's gradients (LibMTL's only mode,
    which also multiplies by the sign of the activations and sums over the batch
    first) they are the representation's entries.

    Reference: Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, "Just Pick
    a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout",
    NeurIPS 2020.

    Args:
        leak: the fraction of each dropped gradient that is kept anyway, in [0, 1].
        seed: an int for reproducible draws, or None.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=GradDrop(leak=0.0, seed=0))`
    """

    def __init__(self, leak=0.0, seed=None, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.leak = check_float("leak", leak, minimum=0, maximum=1)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def combine_gradients(self, grads, losses, present=None):
        matrix = ops.cast(grads, keras.config.floatx())
        positive = ops.maximum(matrix, 0.0)
        negative = ops.minimum(matrix, 0.0)
        positive_sum = ops.sum(positive, axis=0)
        negative_sum = ops.sum(negative, axis=0)
        purity = 0.5 * (1.0 + ops.divide_no_nan(positive_sum + negative_sum, positive_sum - negative_sum))
        keep_positive = purity > keras.random.uniform(ops.shape(purity), seed=self.seed_generator)
        # Per coordinate, what multiplies the kept sign's gradients and the dropped one's.
        on_positive = ops.where(keep_positive, 1.0, self.leak)
        on_negative = ops.where(keep_positive, self.leak, 1.0)
        combined = on_positive * positive_sum + on_negative * negative_sum
        kept = ops.matmul(positive, on_positive) - ops.matmul(negative, on_negative)
        weights = ops.divide_no_nan(kept, ops.sum(positive, axis=1) - ops.sum(negative, axis=1))
        return ops.cast(combined, grads.dtype), weights

    def get_config(self):
        config = super().get_config()
        config.update(leak=self.leak, seed=self.seed)
        return config
