"""The opt-in fast dispatch of `compile(fast_dispatch=True)` on TensorFlow: one step on
a `tf.data` iterator as ONE compiled call that also reads the batch.

Keras 3.15 runs a step on a `tf.data` iterator as a compiled function that wraps the
compiled step and returns its logs in an `Optional`, which Python then opens: two more
eager calls per step. Calls after the first on an epoch's iterator also skip
`tf.function`'s matching of the argument to its traces (`IteratorCall`). On steps of
about a millisecond (small models on a CPU) that dispatch is a large part of the step;
`benchmarks/overhead.py` measures it. The public knob for such models is
`compile(steps_per_execution=N)`.

This module is the only code of keras_mtl's TensorFlow trainer that relies on private
Keras / TensorFlow internals, checked on Keras 3.15.1 and TensorFlow 2.21.0
(`tests/test_train_function.py`): Keras' `Model._autoconvert_optionals` (its wrapper
turning `Optional` placeholders of the data into None), `ConcreteFunction._call_flat`
(where every `tf.function` call ends) and TensorFlow's retracing-warning counter
(`tensorflow.python.eager.polymorphic_function`, optional). `missing` says which of
the required ones an installation lacks; the trainer then keeps Keras' own function
and warns.
"""

import warnings
import weakref

import keras
import tensorflow as tf


def _concrete_function_class():
    try:
        from tensorflow.python.eager.polymorphic_function import concrete_function
    except ImportError:
        return None
    return getattr(concrete_function, "ConcreteFunction", None)


def missing(model):
    """The private internals that the fast dispatch needs and this Keras / TensorFlow
    lacks (an empty list when it can run)."""
    needs = []
    if not callable(getattr(model, "_autoconvert_optionals", None)):
        needs.append("keras.Model._autoconvert_optionals")
    if not callable(getattr(_concrete_function_class(), "_call_flat", None)):
        needs.append("tensorflow ConcreteFunction._call_flat")
    return needs


def applies(model):
    """Whether `model`'s train and test functions are this module's: when compiled
    with `fast_dispatch=True`, for one step per execution, compiled, without a
    distribution strategy, and where this Keras / TensorFlow has what it needs (else
    Keras' own functions, with a warning)."""
    if (not getattr(model, "fast_dispatch", False) or model.steps_per_execution != 1
            or model.run_eagerly or tf.distribute.has_strategy()
            or model.distribute_strategy is not tf.distribute.get_strategy()):
        return False
    needs = missing(model)
    if needs:
        warnings.warn(
            f"keras_mtl: compile(fast_dispatch=True) needs {', '.join(needs)}, which this "
            f"Keras {keras.__version__} / TensorFlow {tf.__version__} lacks: model "
            f"{model.name!r} runs Keras' own train and test functions.", stacklevel=4)
        return False
    return True


class PackedLogs:
    """A step's float32 scalar logs as one vector, and back.

    Keras' train and test functions return a step's logs through a `tf.data`
    `Optional` that Python opens tensor by tensor: about 12 microseconds per tensor
    (Keras 3.15.1, TensorFlow 2.21), which per-task logs (each task's loss and
    weight) multiply. The compiled call returns those scalars stacked under one key,
    and the function splits the vector in one eager op.
    """

    KEY = "keras_mtl_packed_logs"

    def __init__(self):
        self.order = self.names = None

    def pack(self, logs):
        """`logs` (a dict of tensors, in a step) with its float32 scalars stacked."""
        names = [k for k, v in logs.items() if v.dtype == tf.float32 and v.shape.rank == 0]
        if len(names) < 2:
            return logs
        self.order, self.names = list(logs), names
        packed = {k: v for k, v in logs.items() if k not in names}
        packed[self.KEY] = tf.stack([logs[k] for k in names])
        return packed

    def unpack(self, logs):
        """`logs` returned by the compiled call, in the step's order, the packed
        scalars as scalar tensors again (one eager op: tensors are what Keras'
        callback list converts fastest)."""
        if not isinstance(logs, dict) or self.KEY not in logs:
            return logs
        values = dict(zip(self.names, tf.unstack(logs[self.KEY])))
        values.update((k, v) for k, v in logs.items() if k != self.KEY)
        return {k: values[k] for k in self.order}


class IteratorCall:
    """Calls the `tf.function` `function(iterator)` on the same `tf.data` iterator
    again and again, as `function(iterator)` does, but without `tf.function`'s
    per-call matching of the argument against its traces.

    The first call on an iterator goes through `function`; later calls on it run
    the concrete function traced for it through `ConcreteFunction._call_flat`,
    which is where every `tf.function` call ends (TensorFlow's
    `tracing_compilation.call_function`). The matching hashes the iterator's
    element spec at every call: 0.1-0.3 ms of a 1 ms step of a small model. The
    skipped calls still count in TensorFlow's "triggered tf.function retracing"
    warning, which compares traces to calls.
    """

    def __init__(self, function):
        from tensorflow.python.eager.polymorphic_function import polymorphic_function

        self.function = function
        self._iterator = None  # weak reference: an iterator lives for one epoch
        self._concrete = None
        detectors = getattr(polymorphic_function, "_frequent_tracing_detector_manager", None)
        key = getattr(function, "_key_for_call_stats", None)
        if detectors is not None and key is not None:
            self._count_call = lambda: detectors.called_without_tracing(key)
        else:
            self._count_call = lambda: None

    def __call__(self, iterator):
        if not tf.executing_eagerly() or tf.config.functions_run_eagerly():
            return self.function(iterator)
        if self._iterator is None or self._iterator() is not iterator:
            outputs = self.function(iterator)
            self._concrete = self.function.get_concrete_function(iterator)
            self._iterator = weakref.ref(iterator)
            return outputs
        concrete = self._concrete
        self._count_call()
        return concrete._call_flat(tf.nest.flatten(iterator, expand_composites=True),
                                   concrete.captured_inputs)


def one_call_per_step(model, step, keras_function, check_nonfinite=False):
    """`model`'s train or test function running `step` as one compiled call per step
    on a `tf.data` iterator; `keras_function` (Keras' own) for anything else (e.g.
    `train_on_batch`'s one batch). At the end of the data `get_next` raises
    `OutOfRangeError`, which Keras' epoch iterator turns into the end of the epoch.

    With `check_nonfinite`, the same call also asserts (outside the XLA-compiled
    step) that the step recorded no non-finite loss or gradient, and a failed
    assertion raises the recorded error, instead of an eager read of the record
    after each call.
    """
    from keras_mtl.backend.tensorflow.policies import RECORDED_STEP

    packing = PackedLogs()

    # Keras' own wrapper: `Optional` placeholders in the data stand for None.
    one_step = tf.autograph.experimental.do_not_convert(model._autoconvert_optionals(step))
    if model.jit_compile:
        one_step = tf.function(one_step, jit_compile=True, reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    @tf.autograph.experimental.do_not_convert
    def on_iterator(iterator):
        logs = one_step(iterator.get_next())
        if check_nonfinite:
            # The step's logs carry its non-finite record (the trainer's RECORDED_STEP).
            logs = dict(logs)
            recorded = logs.pop(RECORDED_STEP)
            tf.debugging.Assert(recorded < 0, ["keras_mtl: non-finite step"])
        return packing.pack(logs)

    on_same_iterator = IteratorCall(on_iterator)

    def function(iterator):
        if not isinstance(iterator, tf.data.Iterator):
            return keras_function(iterator)
        if not check_nonfinite:
            return packing.unpack(on_same_iterator(iterator))
        try:
            return packing.unpack(on_same_iterator(iterator))
        except tf.errors.InvalidArgumentError:
            model._raise_recorded_nonfinite()  # returns when nothing was recorded
            raise

    return function
