"""`Task`: one task of a multi-task model."""

import copy
import re

import keras

from keras_mtl.weighting._checks import check_float

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class Task:
    """A task: its name, head, loss, metrics and options.

    Args:
        name: the task's output name (a valid Keras layer name: letters, digits,
            `_`, `.`, `-`; not starting with a digit; not `val` or `val_...`, which
            would clash with Keras' validation logs).
        head: what turns the shared features into this task's prediction: a Keras
            layer or model, a list of layers (applied in order), or an int (a `Dense`
            layer with that many linear units).
        loss: the task's loss (name, `keras.losses.Loss` or function; saving the
            model needs a function registered serializable).
        metrics: the task's metrics (a list of names or `keras.metrics.Metric`).
        loss_weight: the task's weight for fixed weighting (Caffe `loss_weight`), a
            finite number >= 0.
        tap: which trunk depth the head reads: the name of a backbone layer, or an
            int index into the backbone's layers; `None` for the trunk's output.
        label_slice: `(start, stop)` on the last axis of one multi-label tensor,
            when all labels come as a single tensor (the Caffe `Slice` layer).

    Example:

    ```python
    colour = keras_mtl.Task("colour", head=3, loss="sparse_categorical_crossentropy",
                            metrics=["accuracy"], tap="block1")
    ```
    """

    def __init__(self, name, head=None, loss=None, metrics=None, loss_weight=1.0,
                 tap=None, label_slice=None):
        _check_name(name)
        try:
            loss_weight = check_float("loss_weight", loss_weight, minimum=0)
        except (TypeError, ValueError) as error:
            raise type(error)(f"Task '{name}': {error}") from None
        if label_slice is not None:
            label_slice = tuple(int(i) for i in label_slice)
            if len(label_slice) != 2 or not 0 <= label_slice[0] < label_slice[1]:
                raise ValueError(
                    f"Task '{name}': label_slice must be (start, stop) with "
                    f"0 <= start < stop. Received: label_slice={label_slice!r}"
                )
        self.name = name
        self.head = head
        self.loss = loss
        self.metrics = list(metrics) if metrics else []
        self.loss_weight = loss_weight
        self.tap = tap
        self.label_slice = label_slice

    def apply_head(self, features):
        """Applies the head to `features` and returns an output named after the task."""
        head = self.head
        if head is None:
            raise ValueError(f"Task '{self.name}' has no head. Pass head=... to Task.")
        if isinstance(head, int):
            head = keras.layers.Dense(head, name=self.name)
        layers = list(head) if isinstance(head, (list, tuple)) else [head]
        out = features
        for layer in layers:
            out = layer(out)
        # A symbolic output is named after the layer that produced it: the head's last.
        if not layers or getattr(layers[-1], "name", None) != self.name:
            out = keras.layers.Identity(name=self.name)(out)
        return out

    def with_head(self, head):
        """A copy of the task with `head` as its head."""
        task = copy.copy(self)
        task.head = head
        return task

    def spec(self):
        """Everything but the head, as a dict; loss and metrics as given (see
        `saved_spec` for the form a `.keras` file holds)."""
        return {
            "name": self.name,
            "loss": self.loss,
            "metrics": list(self.metrics),
            "loss_weight": self.loss_weight,
            "label_slice": list(self.label_slice) if self.label_slice else None,
        }

    @classmethod
    def from_spec(cls, spec):
        spec = loaded_spec(spec)
        return cls(name=spec["name"], loss=spec["loss"], metrics=spec["metrics"],
                   loss_weight=spec["loss_weight"], label_slice=spec["label_slice"])

    def __repr__(self):
        return f"Task({self.name!r}, loss={self.loss!r}, loss_weight={self.loss_weight})"


def serialized(task, what, value):
    """`value` (a task's loss or metric) serialized for a `.keras` file; raises naming
    the task when it is a Python function that loading could not find again."""
    if value is None or isinstance(value, (str, keras.losses.Loss, keras.metrics.Metric)):
        return keras.saving.serialize_keras_object(value)
    error = ValueError(
        f"Task '{task}': cannot save its {what} {value!r}. A Python function used as a "
        "loss or metric needs to be a named function registered with "
        "`@keras.saving.register_keras_serializable()` for the model to be saved "
        "(unregistered functions and lambdas work in memory).")
    if getattr(value, "__name__", None) == "<lambda>":
        raise error
    config = keras.saving.serialize_keras_object(value)
    try:
        keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError):
        raise error from None
    return config


def saved_spec(spec):
    """A `Task.spec()` dict with its loss and metrics serialized (see `serialized`)."""
    name = spec["name"]
    return dict(spec, loss=serialized(name, "loss", spec["loss"]),
                metrics=[serialized(name, "metric", m) for m in spec["metrics"]])


def loaded_spec(spec):
    """The `Task.spec()` dict of a spec from `saved_spec` or from `Task.spec()`."""
    live = lambda v: keras.saving.deserialize_keras_object(v) if isinstance(v, dict) else v
    return dict(spec, loss=live(spec["loss"]), metrics=[live(m) for m in spec["metrics"] or []])


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "Task name must be a non-empty valid Keras output name (letters, "
            f"digits, '_', '.', '-'; not starting with a digit). Received: name={name!r}"
        )
    if name == "val" or name.startswith("val_"):
        raise ValueError(
            "Task name must not be 'val' or start with 'val_': Keras logs validation as "
            f"'val_<log>', which would overwrite this task's logs. Received: name={name!r}")


def check_task_names(names):
    """Raises a clear error for an empty task list, duplicate or invalid names."""
    names = list(names)
    if not names:
        raise ValueError("A multi-task model needs at least one task. Received: tasks=[]")
    seen = set()
    for name in names:
        _check_name(name)
        if name in seen:
            raise ValueError(f"Duplicate task name '{name}'. Task names must be unique.")
        seen.add(name)
