"""`fit`'s callback list under `compile(fast_dispatch=True)`, without Keras' per-batch
work when no callback has a batch hook.

Keras 3.15 converts every step's logs to Python floats and hands them to a thread
pool for the batch-end callbacks even when none of them has a batch hook (with
`verbose=0` and only epoch-level callbacks, such as `History`): 0.02-0.05 ms a step,
3-6% of a small MLP's step at one CPU thread.
"""

import inspect

import keras

from keras_mtl import _distribute

_TRAIN_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")
_TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
_FIT_PARAMETERS = inspect.signature(keras.Model.fit)


def _overrides(callback, hook):
    """Whether `callback` has its own `hook` (from its class, or set on the instance as
    `keras.callbacks.LambdaCallback` does) rather than `keras.callbacks.Callback`'s,
    which does nothing."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(keras.callbacks.Callback, hook)


def _has_hooks(callbacks, hooks):
    return any(_overrides(c, h) for c in callbacks for h in hooks)


class CallbackList(keras.callbacks.CallbackList):
    """`keras.callbacks.CallbackList` that skips the batch-level calls of training
    (and of validation) when none of its callbacks has a hook for them, as found at
    the start of each training (each validation) run."""

    _train_hooks = _test_hooks = True

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._train_hooks = _has_hooks(self.callbacks, _TRAIN_BATCH_HOOKS)

    def on_test_begin(self, logs=None):
        super().on_test_begin(logs)
        self._test_hooks = _has_hooks(self.callbacks, _TEST_BATCH_HOOKS)

    def on_train_batch_begin(self, batch, logs=None):
        if self._train_hooks:
            super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._train_hooks:
            super().on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        if self._test_hooks:
            super().on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if self._test_hooks:
            super().on_test_batch_end(batch, logs)


def for_fit(model, callbacks, args, kwargs):
    """The `CallbackList` that `model.fit(*args, callbacks=callbacks, **kwargs)`
    would make, as this module's `CallbackList`, where the training data is a
    `tf.data.Dataset` (whose number of batches is known without reading it);
    otherwise `callbacks` unchanged."""
    fit = _FIT_PARAMETERS.bind(model, *args, callbacks=callbacks, **kwargs)
    fit.apply_defaults()
    fit = fit.arguments
    x = fit["x"]
    if not _distribute.is_tf_dataset(x):
        return callbacks
    epochs = fit["epochs"]
    if keras.config.max_epochs() and keras.config.max_epochs() < epochs:
        epochs = keras.config.max_epochs()
    steps = fit["steps_per_epoch"]
    if not steps:
        steps = int(x.cardinality())
        steps = steps if steps >= 0 else None
    return CallbackList(callbacks, add_history=True, add_progbar=fit["verbose"] != 0,
                        verbose=fit["verbose"], epochs=epochs, steps=steps, model=model)
