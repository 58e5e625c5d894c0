"""A region proposal network head as two keras_mtl tasks."""

import keras

from keras_mtl.detection.smooth_l1 import SmoothL1
from keras_mtl.task import Task


def rpn_tasks(num_anchors, tap=None, channels=256, objectness="objectness", regression="boxes",
              metrics=True):
    """Faster R-CNN's region proposal network as two tasks on one backbone tap.

    A 3x3 convolution with ReLU (one layer, shared by both heads, as in the paper)
    followed by two sibling 1x1 convolutions: `num_anchors` objectness logits and
    `4 num_anchors` box offsets per cell (Ren et al., "Faster R-CNN", NeurIPS 2015,
    Sec. 3.1). Outputs are reshaped to one row per anchor, in the order of
    `anchors(...)`: `objectness` `(B, A_total, 1)` logits with binary cross-entropy,
    `regression` `(B, A_total, 4)` offsets `(t_x, t_y, t_w, t_h)` with smooth L1. The
    weighting method given to `compile` balances the two (the paper's `lambda`);
    `rpn_targets` makes their labels and sample weights.

    Args:
        num_anchors: anchors per cell (`len(scales) * len(aspect_ratios)`).
        tap: the backbone layer the head reads (as `Task(tap=...)`).
        channels: channels of the 3x3 convolution.
        objectness, regression: the two tasks' names.
        metrics: add binary accuracy (logit threshold 0) to the objectness task.

    Returns:
        `[objectness task, regression task]`, for `keras_mtl.build`.

    Example:

    ```python
    tasks = rpn_tasks(num_anchors=6, tap="block3", channels=64)
    model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(48, 64, 3))
    ```
    """
    if int(num_anchors) != num_anchors or num_anchors < 1:
        raise ValueError(f"rpn_tasks: num_anchors must be an integer >= 1. Received: num_anchors={num_anchors!r}")
    num_anchors = int(num_anchors)
    conv = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{objectness}_{regression}_conv")
    score = [conv, keras.layers.Conv2D(num_anchors, 1, name=f"{objectness}_logits"),
             keras.layers.Reshape((-1, 1), name=objectness)]
    offsets = [conv, keras.layers.Conv2D(4 * num_anchors, 1, name=f"{regression}_offsets"),
               keras.layers.Reshape((-1, 4), name=regression)]
    return [
        Task(objectness, head=score, tap=tap, loss=keras.losses.BinaryCrossentropy(from_logits=True),
             metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)] if metrics else None),
        Task(regression, head=offsets, tap=tap, loss=SmoothL1()),
    ]
