"""Label routing checks of the multi-task trainer: labels whose dtype or shape cannot
fit a task's output and loss, and empty training or evaluation data, rejected with an
error that names the task (or the data argument)."""

import keras
import numpy as np

from keras_mtl import _data_checks, _distribute
from keras_mtl.losses.pairwise import BatchLoss

# Keras losses by the labels they read: class indices, or labels shaped like the output.
_SPARSE_LABEL_LOSSES = ("sparse_categorical_crossentropy", "categorical_generalized_cross_entropy")
_DENSE_LABEL_LOSSES = (
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "poisson",
    "cosine_similarity", "dice", "tversky")


def label_kind(loss):
    """"sparse" or "dense" for a Keras loss of `_SPARSE_LABEL_LOSSES` or
    `_DENSE_LABEL_LOSSES`, else None."""
    fn = getattr(loss, "fn", None)
    for kind, names in (("sparse", _SPARSE_LABEL_LOSSES), ("dense", _DENSE_LABEL_LOSSES)):
        if any(fn is getattr(keras.losses, n, None) for n in names):
            return kind
    return None


def check_label(task, label, prediction, loss=None):
    """Rejects labels whose dtype is not numeric, or whose shape cannot match the
    prediction's for the task's loss (which the loss would otherwise reject with an
    error that does not name the task, or broadcast silently)."""
    # (A torch dtype has no name: str gives "torch.float32".)
    dtype = getattr(label.dtype, "name", None) or str(label.dtype).removeprefix("torch.")
    if not (dtype.startswith(("float", "int", "uint", "bfloat")) or dtype == "bool"):
        raise ValueError(
            f"Task '{task}': labels must be numeric. Received dtype={dtype}, label shape "
            f"{tuple(label.shape)}, for the output shape {tuple(prediction.shape)}.")
    y, p = tuple(label.shape[1:]), tuple(prediction.shape[1:])
    compatible = lambda a, b: len(a) == len(b) and all(
        i is None or j is None or i == j for i, j in zip(a, b))
    # Shaped like the output, but for an axis of size 1 at the end of one of them.
    dense = compatible(y, p) or compatible(y, p + (1,)) or compatible(y + (1,), p)
    sparse = compatible(y, p[:-1]) or compatible(y, p[:-1] + (1,))
    shaped, indices = (None,) + p, (None,) + p[:-1]
    kind = label_kind(loss)
    if isinstance(loss, BatchLoss):
        ok, expected = len(y) == 0 or y == (1,), "identity labels of shape (batch,) or (batch, 1)"
    elif kind == "sparse":
        ok, expected = sparse, f"class indices of shape {indices} or {indices + (1,)}"
    elif kind == "dense":
        ok, expected = dense, f"labels of shape {shaped}"
    else:
        ok, expected = compatible(y, p) or sparse, f"labels of shape {shaped} or {indices}"
    if not ok:
        name = (getattr(getattr(loss, "fn", None), "__name__", None)
                or getattr(loss, "name", None) or "the loss")
        raise ValueError(
            f"Task '{task}': label shape {tuple(label.shape)} does not fit the output shape "
            f"{tuple(prediction.shape)}: {name} expects {expected}. Received dtype={dtype}.")


_DATA_ARGUMENT = {"training": "x", "validation": "validation_data", "evaluation": "x"}


def all_arrays(data):
    """Whether `data` (a structure) is not None and holds numpy arrays only."""
    arrays = keras.tree.flatten(data) if isinstance(data, (dict, list, tuple)) else [data]
    return data is not None and all(isinstance(a, np.ndarray) for a in arrays)


def raise_data_error(error):
    """Raises the `ValueError` of a failed data check in a `tf.data` pipeline
    (`_data_checks.checked_dataset`) for the error it raised, if it is one."""
    checked = _data_checks.data_error(error)
    if checked is not None:
        raise checked from None


def empty_data_error(which):
    return ValueError(f"The {which} dataset is empty: {_DATA_ARGUMENT[which]} gave no batch.")


def check_not_empty(data, which):
    if isinstance(data, (tuple, list)) and data:
        data = data[0]
    if _distribute.is_tf_dataset(data):
        if int(data.cardinality()) == 0:
            raise empty_data_error(which)
    elif data is not None and hasattr(data, "shape") and len(data.shape) and data.shape[0] == 0:
        raise ValueError(f"The {which} data is empty ({_DATA_ARGUMENT[which]} has 0 examples).")

