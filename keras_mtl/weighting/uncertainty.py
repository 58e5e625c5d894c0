"""Uncertainty weighting: learned homoscedastic task uncertainties."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register

_FORM_DIVISORS = {"regression": 2.0, "classification": 1.0}


def infer_form(loss):
    """"classification" for a cross-entropy loss (a softmax or sigmoid likelihood),
    else "regression" (a Gaussian one), from a loss name, `keras.losses.Loss` or
    function."""
    if isinstance(loss, str):
        name = loss
    elif isinstance(loss, keras.losses.Loss):
        name = f"{type(loss).__name__} {getattr(loss, 'name', '')} {getattr(getattr(loss, 'fn', None), '__name__', '')}"
    else:
        name = getattr(loss, "__name__", type(loss).__name__)
    return "classification" if "crossentropy" in name.lower().replace("_", "") else "regression"


@register("uncertainty")
@keras.saving.register_keras_serializable(package="keras_mtl")
class Uncertainty(Weighting):
    """Learned uncertainty weights: objective `sum_k exp(-s_k) L_k / c_k + s_k / 2`.

    `s_k = log sigma_k^2` is learned per task by the `weighting_optimizer`; the
    likelihood form of a task sets `c_k`: 2 for "regression" (Gaussian), 1 for
    "classification" (softmax with temperature). The logged weight of task k is
    `exp(-s_k) / c_k`. By default each task's form is inferred at `compile` from its
    loss (`infer_form`: classification for cross-entropy losses) and recorded in
    `forms`, so the config says which form each task got. An absent task's term
    (regulariser included) is left out of the objective.

    Reference: Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to
    Weigh Losses for Scene Geometry and Semantics", CVPR 2018.

    Args:
        forms: each task's form, "regression" or "classification": a list in task
            order or a dict by task name (missing tasks are inferred from their loss
            by `compile`, else "regression"). `None`: every task's form is inferred
            from its loss by `compile` (regression without a model).
        initial_log_variance: the initial value of every `s_k`.

    Example:

    ```python
    model.compile(optimizer="adam", weighting_optimizer=keras.optimizers.Adam(1e-2),
                  weighting=Uncertainty(forms={"segmentation": "classification"}))
    ```
    """

    def __init__(self, forms=None, initial_log_variance=-0.5, **kwargs):
        super().__init__(**kwargs)
        if forms is not None and not isinstance(forms, (list, tuple, dict)):
            raise TypeError(
                f"forms must be a list or a dict by task name. Received: forms={forms!r}")
        values = forms.values() if isinstance(forms, dict) else (forms or [])
        for form in values:
            if form not in _FORM_DIVISORS:
                raise ValueError(
                    f"Each form must be one of {sorted(_FORM_DIVISORS)}. Received: forms={forms!r}")
        self.forms = dict(forms) if isinstance(forms, dict) else (list(forms) if forms else None)
        self.initial_log_variance = check_float("initial_log_variance", initial_log_variance)
        self._forms_in_task_order = None if isinstance(forms, dict) else self.forms

    def resolve(self, task_names, losses=None):
        """Orders dict forms by `task_names` and infers the forms not given from the
        tasks' `losses` (a dict by task name; called by `compile`)."""
        if isinstance(self.forms, dict):
            unknown = set(self.forms) - set(task_names)
            if unknown:
                raise ValueError(
                    f"Uncertainty forms name unknown tasks {sorted(unknown)}. "
                    f"Tasks: {list(task_names)}")
        if self.forms is None or isinstance(self.forms, dict):
            given = self.forms or {}
            inferred = {n: infer_form(losses[n]) if losses and n in losses else "regression"
                        for n in task_names}
            self.forms = {n: given.get(n, inferred[n]) for n in task_names}
            self._forms_in_task_order = [self.forms[n] for n in task_names]

    def build(self, input_shape):
        super().build(input_shape)
        self.log_variances = self.add_weight(
            shape=(self.num_tasks,), name="log_variances",
            initializer=keras.initializers.Constant(self.initial_log_variance))

    def _divisors(self):
        forms = self._forms_in_task_order
        if forms is None and isinstance(self.forms, dict):
            raise ValueError("Uncertainty got forms by task name; call resolve(task_names) "
                             "first (compile does).")
        forms = forms or ["regression"] * self.num_tasks
        if len(forms) != self.num_tasks:
            raise ValueError(
                f"Uncertainty got {len(forms)} forms for {self.num_tasks} tasks. "
                f"Received: forms={self.forms!r}")
        return [_FORM_DIVISORS[f] for f in forms]

    def task_weights(self, losses, training=False):
        divisors = ops.convert_to_tensor(self._divisors(), dtype=losses.dtype)
        return ops.exp(-ops.convert_to_tensor(self.log_variances)) / divisors

    def combine(self, losses, training=False, present=None):
        weights = self.task_weights(losses, training=training)
        # An absent task's term, regulariser included, is left out.
        mask = ops.cast(present_mask(present, self.num_tasks), losses.dtype)
        objective = ops.sum(mask * (weights * losses + 0.5 * self.log_variances))
        return objective, weights

    def get_config(self):
        config = super().get_config()
        config.update(forms=self.forms, initial_log_variance=self.initial_log_variance)
        return config
