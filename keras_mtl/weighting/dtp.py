"""Dynamic Task Prioritization (DTP)."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, replica_sum
from keras_mtl.weighting.registry import register

_KPI_FUNCTIONS = {
    "binary_accuracy": keras.metrics.binary_accuracy,
    "categorical_accuracy": keras.metrics.categorical_accuracy,
    "sparse_categorical_accuracy": keras.metrics.sparse_categorical_accuracy,
}
# Worst KPI the weights see, so that a KPI of 0 gives a large finite weight.
_KPI_FLOOR = 1e-6


def _accuracy(y_true, y_pred):
    """Keras' "accuracy": binary, categorical or sparse from the shapes."""
    if y_pred.shape[-1] == 1:
        return keras.metrics.binary_accuracy(y_true, y_pred)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]:
        return keras.metrics.categorical_accuracy(y_true, y_pred)
    return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)


def _masked_mean(values, sample_weight):
    """Returns `(mean, count)` of `values` over the entries with non-zero weight, in
    the global batch (summed over replicas under a distribution strategy)."""
    values = ops.cast(values, keras.config.floatx())
    weight = ops.ones_like(values) if sample_weight is None else ops.cast(sample_weight, keras.config.floatx())
    while len(weight.shape) > len(values.shape) and weight.shape[-1] == 1:
        weight = ops.squeeze(weight, axis=-1)
    while len(weight.shape) < len(values.shape):
        weight = ops.expand_dims(weight, axis=-1)
    weight = ops.broadcast_to(weight, ops.shape(values))
    sums = replica_sum(ops.stack([ops.sum(values * weight), ops.sum(weight)]))
    return ops.divide_no_nan(sums[0], sums[1]), sums[1]


@register("dtp")
@keras.saving.register_keras_serializable(package="keras_mtl")
class DTP(Weighting):
    """Dynamic Task Prioritization: harder tasks, by a key performance indicator
    (KPI), get larger focal weights.

    Each task with a KPI `kappa_k` in [0, 1] (e.g. its accuracy) gets the weight
    `w_k = -(1 - kbar_k)^gamma log(kbar_k)`, where `kbar_k` is the KPI's moving
    average over training batches, `kbar <- momentum kbar + (1 - momentum) kappa`
    (started at the first labelled batch's KPI). Tasks without a KPI keep weight 1.
    Implements the task-level prioritization of the paper.

    Reference: Guo, Haque, Huang, Yeung, Fei-Fei, "Dynamic Task Prioritization for
    Multitask Learning", ECCV 2018.

    Args:
        kpis: dict from task name to its KPI: "accuracy" (binary, categorical or
            sparse, from the shapes, as Keras does), "binary_accuracy",
            "categorical_accuracy", "sparse_categorical_accuracy", or a function
            `(y_true, y_pred) -> values in [0, 1]` (per sample or per entry),
            registered serializable to be saved.
        gamma: the focusing parameter (>= 0).
        momentum: the moving average's weight on the past, in [0, 1).

    Example: `model.compile(optimizer="adam", weighting=DTP({"age": "accuracy"}, gamma=2.0))`
    """

    def __init__(self, kpis=None, gamma=1.0, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(kpis, dict) or not kpis:
            raise ValueError(
                "DTP needs kpis, a non-empty dict from task name to a KPI such as "
                f"'accuracy'. Received: kpis={kpis!r}")
        self.kpis = {}
        for task, kpi in kpis.items():
            if isinstance(kpi, dict):
                kpi = keras.saving.deserialize_keras_object(kpi)
            if not (kpi == "accuracy" or kpi in _KPI_FUNCTIONS or callable(kpi)):
                raise ValueError(
                    f"Unknown KPI for task '{task}'. Use 'accuracy', one of "
                    f"{sorted(_KPI_FUNCTIONS)} or a function. Received: kpis[{task!r}]={kpi!r}")
            self.kpis[task] = kpi
        self.gamma = check_float("gamma", gamma, minimum=0)
        self.momentum = check_float("momentum", momentum, minimum=0, below=1)
        self.task_names = None

    def resolve(self, task_names, losses=None):
        """Records the task order (called by `compile`)."""
        unknown = set(self.kpis) - set(task_names)
        if unknown:
            raise ValueError(
                f"DTP kpis name unknown tasks {sorted(unknown)}. Tasks: {list(task_names)}")
        self.task_names = list(task_names)

    def build(self, input_shape):
        super().build(input_shape)
        k = self.num_tasks
        self.kpi_averages = self.add_weight(shape=(k,), initializer="ones", trainable=False,
                                            aggregation="mean", name="kpi_averages")
        self.kpi_seen = self.add_weight(shape=(k,), initializer="zeros", trainable=False,
                                        aggregation="mean", name="kpi_seen")

    def _ordered_tasks(self):
        if self.task_names is None or len(self.task_names) != self.num_tasks:
            raise ValueError(
                f"DTP needs the names of its {self.num_tasks} tasks: call "
                f"resolve(task_names) first (compile does). Received: {self.task_names!r}")
        return self.task_names

    def _kpi_function(self, task):
        kpi = self.kpis[task]
        if kpi == "accuracy":
            return _accuracy
        return _KPI_FUNCTIONS.get(kpi, kpi) if isinstance(kpi, str) else kpi

    def observe(self, y, y_pred, sample_weight):
        batch_kpis, labelled = [], []
        for task in self._ordered_tasks():
            if task not in self.kpis:
                batch_kpis.append(ops.zeros(()))
                labelled.append(ops.zeros((), dtype="bool"))
                continue
            values = self._kpi_function(task)(y[task], ops.stop_gradient(y_pred[task]))
            mean, count = _masked_mean(values, (sample_weight or {}).get(task))
            batch_kpis.append(mean)
            labelled.append(count > 0)
        batch_kpis, labelled = ops.stack(batch_kpis), ops.stack(labelled)
        averaged = ops.where(self.kpi_seen > 0,
                             self.momentum * self.kpi_averages + (1 - self.momentum) * batch_kpis,
                             batch_kpis)
        self.kpi_averages.assign(ops.where(labelled, averaged, ops.convert_to_tensor(self.kpi_averages)))
        self.kpi_seen.assign(ops.maximum(self.kpi_seen, ops.cast(labelled, keras.config.floatx())))

    def task_weights(self, losses, training=False):
        has_kpi = ops.convert_to_tensor([t in self.kpis for t in self._ordered_tasks()])
        kpi = ops.clip(ops.convert_to_tensor(self.kpi_averages), _KPI_FLOOR, 1.0)
        focal = -((1.0 - kpi) ** self.gamma) * ops.log(kpi)
        return ops.where(ops.logical_and(has_kpi, self.kpi_seen > 0), focal, 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            kpis={t: k if isinstance(k, str) else keras.saving.serialize_keras_object(k)
                  for t, k in self.kpis.items()},
            gamma=self.gamma, momentum=self.momentum)
        return config
