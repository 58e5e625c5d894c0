"""Krum: the task gradient (or the m gradients) closest to its neighbours."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("krum")
@keras.saving.register_keras_serializable(package="keras_mtl")
class Krum(GradientWeighting):
    """Krum and Multi-Krum: a Byzantine-robust aggregation that keeps the gradients
    closest to their neighbours.

    With `n` present tasks of which at most `f = n_byzantine` may be arbitrary, the
    score of gradient i is `s(i) = sum_j ||g_i - g_j||^2` over its `n - f - 2` nearest
    other gradients (the paper's squared distances); the update is the mean of the
    `m = n_selected` gradients of lowest score (Multi-Krum; `m = 1` is Krum), times
    `n`: the scale of the summed gradients. The logged weights are `n / m` on the
    selected tasks, 0 elsewhere. Distances come from the Gramian,
    `||g_i - g_j||^2 = G_ii + G_jj - 2 G_ij` (in float64 where the backend has it).
    Ties go to the lower task index. With fewer than `f + 3` present tasks the
    neighbour count is clipped at 0 (every score 0: the first `m` present tasks).

    TorchJD's `Krum` sums the distances themselves, not their squares; the two pick
    different gradients when one neighbour is far (docs/methods.md).

    Reference: Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.

    Args:
        n_byzantine: `f`, the number of gradients that may be arbitrary (>= 0; the
            model needs at least `f + 3` tasks).
        n_selected: `m`, how many gradients to average (>= 1, at most K).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=Krum(n_byzantine=1))`
    """

    def __init__(self, n_byzantine, n_selected=1, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.n_byzantine = check_int("n_byzantine", n_byzantine, minimum=0)
        self.n_selected = check_int("n_selected", n_selected, minimum=1)

    def build(self, input_shape):
        super().build(input_shape)
        if self.num_tasks < self.n_byzantine + 3 or self.num_tasks < self.n_selected:
            raise ValueError(
                f"Krum needs at least n_byzantine + 3 and n_selected tasks; the model has "
                f"{self.num_tasks}. Received: n_byzantine={self.n_byzantine}, "
                f"n_selected={self.n_selected}")

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        present = present_mask(present, k)
        gram = ops.cast(gram, "float64")
        squared = ops.diagonal(gram)
        distances = ops.maximum(squared[:, None] + squared[None, :] - 2.0 * gram, 0.0)
        others = present[None, :] & present[:, None] & ~ops.eye(k, dtype="bool")
        count = ops.sum(ops.cast(present, "int32"))
        neighbours = ops.maximum(count - self.n_byzantine - 2, 0)
        nearest = ops.sort(ops.where(others, distances, float("inf")), axis=1)
        ranks = ops.arange(k, dtype="int32")[None, :]
        scores = ops.sum(ops.where(ranks < neighbours, nearest, 0.0), axis=1)
        # Each task's place in the order by (score, index), absent tasks last.
        scores = ops.where(present, scores, float("inf"))
        before = (scores[None, :] < scores[:, None]) | ((scores[None, :] == scores[:, None])
                                                         & (ranks < ops.transpose(ranks)))
        place = ops.sum(ops.cast(before, "int32"), axis=1)
        selected_count = ops.minimum(self.n_selected, count)
        selected = ops.cast(present & (place < selected_count), "float64")
        per_selected = ops.divide_no_nan(ops.cast(count, "float64"), ops.cast(selected_count, "float64"))
        return ops.cast(selected * per_selected, keras.config.floatx()), ops.zeros(())

    def get_config(self):
        config = super().get_config()
        config.update(n_byzantine=self.n_byzantine, n_selected=self.n_selected)
        return config
