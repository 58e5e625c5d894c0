"""Fixed weighting: constant per-task weights (Caffe's `loss_weight`)."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting
from keras_mtl.weighting.registry import register


@register("fixed")
@keras.saving.register_keras_serializable(package="keras_mtl")
class Fixed(Weighting):
    """Constant weights: the objective is `sum_k w_k L_k`.

    Args:
        weights: one non-negative float per task, in task order, or a dict by task
            name (resolved to task order by `compile`).

    Example: `model.compile(optimizer="adam", weighting=Fixed({"age": 0.1, "gender": 1.0}))`
    """

    def __init__(self, weights, **kwargs):
        super().__init__(**kwargs)
        if isinstance(weights, str) or not hasattr(weights, "__iter__"):
            raise TypeError(
                f"weights must be a list or a dict by task name. Received: weights={weights!r}")
        items = weights.items() if isinstance(weights, dict) else enumerate(weights)
        checked = {key: check_float(f"weights[{key!r}]", w, minimum=0) for key, w in items}
        self.weights_by_task = checked if isinstance(weights, dict) else None
        self.fixed_weights = None if isinstance(weights, dict) else list(checked.values())

    def resolve(self, task_names, losses=None):
        """Orders dict weights by `task_names` (called by `compile`)."""
        if self.weights_by_task is not None:
            unknown = set(self.weights_by_task) - set(task_names)
            if unknown:
                raise ValueError(
                    f"Fixed weights name unknown tasks {sorted(unknown)}. Tasks: {list(task_names)}"
                )
            self.fixed_weights = [float(self.weights_by_task.get(n, 1.0)) for n in task_names]
        if len(self.fixed_weights) != len(task_names):
            raise ValueError(
                f"Fixed weighting got {len(self.fixed_weights)} weights for "
                f"{len(task_names)} tasks {list(task_names)}."
            )

    def task_weights(self, losses, training=False):
        return ops.convert_to_tensor(self.fixed_weights, dtype=losses.dtype)

    def get_config(self):
        config = super().get_config()
        config["weights"] = self.weights_by_task or self.fixed_weights
        return config
