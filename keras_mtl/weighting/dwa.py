"""Dynamic Weight Average (DWA)."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("dwa")
@keras.saving.register_keras_serializable(package="keras_mtl")
class DWA(Weighting):
    """Dynamic Weight Average: tasks whose loss fell slowly last epoch weigh more.

    `lambda_k(t) = K exp(w_k(t-1) / T) / sum_i exp(w_i(t-1) / T)` with
    `w_k(t-1) = L_k(t-1) / L_k(t-2)`, `L_k` the epoch-average training loss of
    task k; the weights are 1 in the first two epochs. The epoch averages are
    accumulated in the train step and the weights change in `on_epoch_end`.

    Reference: Liu, Johns, Davison, "End-to-End Multi-Task Learning with
    Attention", CVPR 2019.

    Args:
        temperature: the softmax temperature T (> 0); larger is closer to equal.

    Example: `model.compile(optimizer="adam", weighting=DWA(temperature=2.0))`
    """

    def __init__(self, temperature=2.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = check_float("temperature", temperature, above=0)

    def build(self, input_shape):
        super().build(input_shape)
        k = self.num_tasks

        def state(name, shape, initializer="zeros"):
            # "mean": replicas add their own batch losses; their mean is the global one.
            return self.add_weight(shape=shape, initializer=initializer, trainable=False,
                                   aggregation="mean", name=name)

        self.current_weights = state("current_weights", (k,), "ones")
        self.loss_sum = state("loss_sum", (k,))
        self.step_count = state("step_count", (k,))
        self.previous_losses = state("previous_losses", (2, k))
        self.epochs_seen = state("epochs_seen", ())

    def task_weights(self, losses, training=False):
        return ops.convert_to_tensor(self.current_weights)

    def combine(self, losses, training=False, present=None):
        if training:
            # Each task's epoch mean is over the steps whose batch has its labels.
            mask = ops.cast(present_mask(present, self.num_tasks), keras.config.floatx())
            self.loss_sum.assign_add(ops.stop_gradient(losses) * mask)
            self.step_count.assign_add(mask)
        return super().combine(losses, training=training, present=present)

    def on_epoch_end(self):
        # An epoch without training steps (e.g. an empty dataset) changes nothing, and
        # a task without labels in the epoch keeps its loss history.
        trained = self.step_count > 0
        average = ops.divide_no_nan(self.loss_sum, self.step_count)
        # previous_losses[0] is L(t-2), previous_losses[1] is L(t-1).
        history = ops.where(trained[None, :], ops.stack([self.previous_losses[1], average]),
                            ops.convert_to_tensor(self.previous_losses))
        any_trained = ops.any(trained)
        epochs = self.epochs_seen + ops.cast(any_trained, keras.config.floatx())
        ratios = ops.divide_no_nan(history[1], history[0])
        dynamic = self.num_tasks * ops.softmax(ratios / self.temperature)
        self.current_weights.assign(
            ops.where(ops.logical_and(any_trained, epochs >= 2), dynamic,
                      ops.convert_to_tensor(self.current_weights)))
        self.previous_losses.assign(history)
        self.epochs_seen.assign(epochs)
        self.loss_sum.assign(ops.zeros(self.loss_sum.shape, self.loss_sum.dtype))
        self.step_count.assign(ops.zeros(self.step_count.shape, self.step_count.dtype))

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config
