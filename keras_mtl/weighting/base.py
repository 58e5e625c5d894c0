"""The interface every task-weighting method implements."""

import keras
from keras import ops


class Weighting(keras.layers.Layer):
    """Base class of task-weighting methods.

    A weighting method turns the K per-task losses of a step into one objective.
    Its state (loss history, learned weights) lives in Keras variables created in
    `build((K,))`, so it is saved in `.keras` files and restored by
    `BackupAndRestore`. Trainable variables (e.g. learned log-variances) are
    optimized by the model's `weighting_optimizer` on the objective's gradient.

    Subclasses implement `task_weights(losses, training)`, and override `combine`
    when the objective is not `sum_k w_k L_k` (e.g. an extra regularizer), and
    `on_epoch_end()` for epoch-level updates (called by the model after each
    training epoch). Methods that need per-task gradients set
    `gradient_mode = "shared_parameters"` and implement `combine_gradients`.
    """

    gradient_mode = None

    def __init__(self, name="weighting", **kwargs):
        super().__init__(name=name, **kwargs)

    def build(self, input_shape):
        self.num_tasks = int(input_shape[0])
        super().build(input_shape)

    def task_weights(self, losses, training=False):
        """Returns the K task weights for this step (a float32 tensor of shape (K,))."""
        raise NotImplementedError

    def combine(self, losses, training=False):
        """Returns `(objective, weights)` for the per-task losses `losses` (shape (K,)).

        With `training=True` the method may update its per-step state.
        """
        weights = self.task_weights(losses, training=training)
        return ops.sum(weights * losses), weights

    def combine_gradients(self, grads, losses):
        """For gradient methods: `grads` is the K x P matrix of per-task gradients of
        the shared parameters. Returns `(combined, weights)`, `combined` of shape (P,)."""
        raise NotImplementedError

    def on_epoch_end(self):
        """Epoch-level state update; the model calls it after each training epoch."""

    def call(self, losses, training=False):
        return self.combine(losses, training=training)[0]
