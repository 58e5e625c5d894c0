"""`FunctionLoss`: a loss function `fn(y_true, y_pred)` as a `keras.losses.Loss`."""

import keras
from keras import ops


def _same_rank(y_true, y_pred):
    """Labels and predictions whose ranks differ by a last axis of size 1 brought to the
    same rank, as Keras' own losses do: a rank-1 tensor gains the axis, else the other
    loses it."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        if pred_rank == 1:
            y_pred = ops.expand_dims(y_pred, -1)
        else:
            y_true = ops.squeeze(y_true, -1)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        if true_rank == 1:
            y_true = ops.expand_dims(y_true, -1)
        else:
            y_pred = ops.squeeze(y_pred, -1)
    return y_true, y_pred


@keras.saving.register_keras_serializable(package="keras_mtl")
class FunctionLoss(keras.losses.Loss):
    """Wraps a function `fn(y_true, y_pred)` that returns per-example losses as a
    `keras.losses.Loss` (sample weights, reduction and the replica scaling of
    `tf.distribute` come from `Loss`). `MultiTaskModel.compile` wraps a task's
    loss given as a function (e.g. `"mse"`, which `keras.losses.get` resolves to
    `keras.losses.mean_squared_error`) in one.

    Args:
        fn: the loss function; to be saved in a `.keras` file it must be a Keras
            loss function or one registered with
            `keras.saving.register_keras_serializable`.
        reduction, name, dtype: as for `keras.losses.Loss`; `name` defaults to
            the function's name.

    Example:
        `FunctionLoss(keras.losses.huber)(y_true, y_pred, sample_weight=mask)`
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None):
        if not callable(fn):
            raise TypeError(f"FunctionLoss needs a callable fn. Received: fn={fn!r}")
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction,
                         dtype=dtype)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(*_same_rank(y_true, y_pred))

    def get_config(self):
        return {**super().get_config(), "fn": keras.saving.serialize_keras_object(self.fn)}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "fn": keras.saving.deserialize_keras_object(config["fn"])})
