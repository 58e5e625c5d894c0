"""Checks of the values that `fit` and `evaluate` get, made where the data enter and
not in the train step: class indices within the output's classes, integer identity
labels for the metric-learning losses, per-task sample weights that are masks (finite,
>= 0), inputs of a numeric dtype. Arrays are checked on the host before training; a
`tf.data` pipeline by a `map` appended to it, which runs in the pipeline beside the
step; a Python generator batch by batch on the host as it yields (its numpy arrays).
A `keras.utils.PyDataset` and an already distributed dataset are not checked."""

import re
import types

import keras
import numpy as np

from keras_mtl import _distribute
from keras_mtl.losses.pairwise import BatchLoss
from keras_mtl.losses.pixel_cross_entropy import PixelCrossEntropy

_SPARSE = ("sparse_categorical_crossentropy", "categorical_generalized_cross_entropy")


def value_rule(loss, prediction):
    """What the values of a task's labels must be for its `loss`: `("classes", C,
    ignored)` for class indices in `[0, C)` (C the prediction's last axis, None when
    unknown; `ignored` a label the loss skips, or None), `("identities",)` for integer
    identities, or None for no rule."""
    if isinstance(loss, BatchLoss):
        return ("identities",)
    classes = prediction.shape[-1] if len(prediction.shape) else None
    if isinstance(loss, PixelCrossEntropy):
        return ("classes", classes, loss.ignore_label)
    fn = getattr(loss, "fn", None)
    if any(fn is getattr(keras.losses, n, None) for n in _SPARSE):
        return ("classes", classes, getattr(loss, "_fn_kwargs", {}).get("ignore_class"))
    return None


def _rule_text(rule):
    if rule[0] == "identities":
        return "identity labels must be integers (the loss would truncate a fraction)"
    _, classes, ignored = rule
    text = (f"class labels must be integers in [0, {classes}), the {classes} classes of its "
            "output" if classes else "class labels must be integers >= 0")
    return text + ("" if ignored is None else f", or {ignored} (ignored)")


def _number(value):
    return f"{value:.7g}" if np.issubdtype(np.asarray(value).dtype, np.floating) else str(value)


# Starts the message of a check in a `tf.data` pipeline, which `data_error` finds in
# the TensorFlow error that the check raises.
_MARK = "keras_mtl data check: "
_ASSERTION = re.compile(re.escape(_MARK) + r"(.*?)\] \[(.*?)\] \[(.*?)\]")


def data_error(error):
    """The `ValueError` of a failed check in a `tf.data` pipeline (`checked_dataset`)
    from the error it raised, or None for any other error."""
    found = _ASSERTION.search(str(error))
    if found is None:
        return None
    prefix, value, suffix = (part.replace("\\'", "'") for part in found.groups())
    return ValueError(f"{prefix} {value}{suffix}")


def check_label_values(task, label, rule):
    """Raises naming `task` for a numpy `label` array whose values break `rule`."""
    if rule is None or not np.issubdtype(label.dtype, np.number):
        return
    values = label.reshape(-1)
    bad = _bad_values(np, values, rule)
    if bad.any():
        raise ValueError(f"Task '{task}': label {_number(values[bad][0])} (one of "
                         f"{int(bad.sum())}): {_rule_text(rule)}.")


def _bad_values(xp, values, rule):
    """Which of `values` (numpy, or TensorFlow as `xp`) break `rule`."""
    fractional = values != xp.round(values) if _is_float(values) else values != values
    if rule[0] == "identities":
        return fractional
    _, classes, ignored = rule
    bad = fractional | (values < 0)
    if classes:
        bad = bad | (values >= classes)
    if ignored is not None:
        bad = bad & (values != ignored)
    return bad


def _is_float(values):
    dtype = values.dtype
    return getattr(dtype, "is_floating", None) or np.issubdtype(
        getattr(dtype, "as_numpy_dtype", dtype), np.floating)


_WEIGHT_RULE = ("sample weights are masks: each must be finite and >= 0 (0 leaves the "
                "example out)")


def check_weight_values(task, weight):
    """Raises naming `task` for a numpy sample-weight array that is not a mask."""
    if weight is None or not np.issubdtype(weight.dtype, np.number):
        return
    values = weight.reshape(-1)
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        raise ValueError(f"Task '{task}': sample weight {_number(values[bad][0])} (one of "
                         f"{int(bad.sum())}): {_WEIGHT_RULE}.")


def check_weight_shape(task, weight, prediction):
    """Raises naming `task` for a sample weight whose shape gives no one weight per
    example (or per entry of the loss, e.g. per pixel, or broadcast over some of its
    axes with size 1, e.g. (B, 1, 1) per image) of `prediction`."""
    w, p = tuple(weight.shape), tuple(prediction.shape)
    entries = p[:-1] if len(p) > 1 else p
    if len(w) > 1 and w[-1] == 1:
        w = w[:-1]
    fits = len(w) <= len(entries) and all(
        i is None or j is None or i == j or (axis > 0 and i == 1)
        for axis, (i, j) in enumerate(zip(w, entries)))
    if not (w and fits):
        raise ValueError(
            f"Task '{task}': sample weight shape {tuple(weight.shape)} does not fit the output "
            f"shape {p}: give one weight per example, shape {entries[:1]}, or per entry of "
            f"the loss, shape {entries}.")


def check_inputs(x, model_inputs):
    """Raises for a numpy input array (or a `tf.data` input spec) of a non-numeric
    dtype where the model's input (`model_inputs`, its flat Keras tensors) is
    numeric, naming the input."""
    inputs = keras.tree.flatten(x)
    if len(model_inputs) != len(inputs):
        model_inputs = [None] * len(inputs)
    for model_input, value in zip(model_inputs, inputs):
        if model_input is not None and model_input.dtype == "string":
            continue
        dtype = getattr(value, "dtype", None)
        kind = getattr(dtype, "kind", None)
        if kind in ("U", "S", "O") or getattr(dtype, "name", None) == "string":
            name = getattr(model_input, "name", None)
            label = f"Input {name!r}" if name else "An input"
            raise ValueError(
                f"{label} holds strings (dtype {dtype}): the model's inputs must be numeric. "
                "Turn text into numbers first (e.g. `keras.layers.StringLookup` or "
                "`TextVectorization` in the data pipeline).")


def _first(tf, values, bad):
    """The first entry of `values` where `bad` holds (the first entry when none does):
    one gather, so that a batch without a bad entry costs no boolean mask."""
    return tf.gather(values, tf.argmax(tf.cast(bad, tf.int32)))[None]


def checked_dataset(dataset, rules, outputs, labels_by_task, weights_by_task, model_inputs):
    """`dataset` (a `tf.data.Dataset` of `(x, y[, sample_weight])`) with its labels'
    values checked against `rules` (by task) and its sample weights checked to be
    masks, in a `map` appended to it; unchanged when there is nothing to check. The
    dtypes of its inputs and the shapes of its sample weights (against `outputs`, by
    task) are checked from its element spec."""
    import tensorflow as tf

    spec = dataset.element_spec
    x_spec, y_spec, w_spec = keras.utils.unpack_x_y_sample_weight(spec)
    check_inputs(x_spec, model_inputs)
    if y_spec is None:
        return dataset
    for task, weight in weights_by_task(w_spec).items():
        if weight is not None:
            check_weight_shape(task, weight, outputs[task])
    label_rules = {t: r for t, r in rules.items() if r is not None}
    if not label_rules and w_spec is None:
        return dataset

    def check(*element):
        data = element[0] if len(element) == 1 else element
        _, y, weights = keras.utils.unpack_x_y_sample_weight(data)
        labels = labels_by_task(y)
        checks = []
        for task, rule in label_rules.items():
            values = tf.reshape(labels[task], [-1])
            if not (values.dtype.is_floating or values.dtype.is_integer):
                continue
            bad = _bad_values(tf, values, rule)
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [f"{_MARK}Task '{task}': label", _first(tf, values, bad),
                 f": {_rule_text(rule)}."]))
        for task, weight in weights_by_task(weights).items():
            if weight is None:
                continue
            values = tf.reshape(weight, [-1])
            bad = tf.logical_not(tf.math.is_finite(values) & (values >= 0))
            checks.append(tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [f"{_MARK}Task '{task}': sample weight", _first(tf, values, bad),
                 f": {_WEIGHT_RULE}."]))
        with tf.control_dependencies(checks):
            return tf.nest.map_structure(tf.identity, element)

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def checked_generator(generator, check_batch):
    """`generator` (of `(x, y[, sample_weight])` batches) with `check_batch` called
    on each batch before it is yielded."""
    for batch in generator:
        check_batch(batch)
        yield batch


def is_generator(data):
    return isinstance(data, types.GeneratorType)


def is_dataset(data):
    return _distribute.is_tf_dataset(data)
