"""Task presets: functions that return a configured `keras_mtl.Task` (head, loss,
metrics) for the kinds of task the library supports.

Every head's last layer is named after the task; its other layers are named
`{name}_pool`, `{name}_hidden{i}`, `{name}_head...`, so that `model.get_layer` finds
them. A head's layers are made in the order they are applied: an unseeded initializer
draws its seed when its layer is made, so a preset gives the initial weights of the
same layers written out by hand. Each preset takes the few arguments that matter; for
anything else, write the `Task` yourself (a preset is a `Task` like any other:
`with_head` swaps its head).

Example:

```python
tasks = [keras_mtl.tasks.classification("breed", 3, pool=True),
         keras_mtl.tasks.segmentation("trimap", 3, width=16)]
model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(32, 32, 3))
```
"""

import keras

from keras_mtl import losses as losses_lib
from keras_mtl import metrics as metrics_lib
from keras_mtl.detection.rpn import rpn_tasks
from keras_mtl.layers.embedding_head import EmbeddingHead
from keras_mtl.task import Task
from keras_mtl.weighting._checks import check_int


def _trunk_side(name, pool, hidden):
    """The layers between the trunk and a dense output: global average pooling
    (`pool`), then ReLU layers of the `hidden` widths."""
    layers = [keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")] if pool else []
    for i, units in enumerate(hidden, start=1):
        layers.append(keras.layers.Dense(check_int("hidden", units, minimum=1), activation="relu",
                                         name=f"{name}_hidden{i}"))
    return layers


def _check_positive(preset, name, argument, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"keras_mtl.tasks.{preset}('{name}'): {argument} must be an integer >= 1. "
                         f"Received: {argument}={value!r}")
    return int(value)


def classification(name, classes, hidden=(), pool=False, from_logits=True, loss_weight=1.0, tap=None):
    """A single-label classification task.

    Head: global average pooling (`pool=True`, for image features), ReLU layers of
    the `hidden` widths, a `Dense(classes)` named `name` (softmax when
    `from_logits=False`). Loss: sparse categorical cross-entropy. Metric: accuracy.

    Labels: class indices `(B,)` or `(B, 1)`.

    Args:
        name: the task's name.
        classes: number of classes.
        hidden, pool: the layers before the output (see the module).
        from_logits: output logits (else probabilities).
        loss_weight, tap: as for `Task`.
    """
    classes = _check_positive("classification", name, "classes", classes)
    head = _trunk_side(name, pool, hidden) + [
        keras.layers.Dense(classes, activation=None if from_logits else "softmax", name=name)]
    return Task(name, head=head,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                loss_weight=loss_weight, tap=tap)


def binary(name, hidden=(), pool=False, from_logits=True, loss_weight=1.0, tap=None):
    """A binary classification task (one attribute, click or not, income > 50K).

    Head: `pool`, `hidden` as for `classification`, then a `Dense(1)` named `name`
    (sigmoid when `from_logits=False`). Loss: binary cross-entropy. Metrics: accuracy
    (at logit 0, probability 0.5) and ROC-AUC.

    Labels: 0/1 of shape `(B,)` or `(B, 1)`.
    """
    head = _trunk_side(name, pool, hidden) + [
        keras.layers.Dense(1, activation=None if from_logits else "sigmoid", name=name)]
    return Task(name, head=head,
                loss=keras.losses.BinaryCrossentropy(from_logits=from_logits),
                metrics=[keras.metrics.BinaryAccuracy(threshold=0.0 if from_logits else 0.5, name="accuracy"),
                         keras.metrics.AUC(from_logits=from_logits, name="auc")],
                loss_weight=loss_weight, tap=tap)


def binary_attributes(names, multi_label=None, hidden=(), pool=False, loss_weight=1.0, tap=None):
    """Binary attributes (CelebA's 40, a molecule's toxicity assays): one task per
    attribute, or one multi-label task.

    Per attribute (`multi_label=None`): a list of `binary(name)` tasks with logits,
    each with its own head, loss and weight, as in Sener and Koltun (NeurIPS 2018),
    labels `(B,)` 0/1 per task. Multi-label (`multi_label="attributes"`): one task of
    that name, a `Dense(len(names))` of logits, the binary cross-entropy averaged over
    the attributes and binary accuracy at logit 0, labels `(B, len(names))`.

    Returns:
        A list of tasks (one task when `multi_label` is given).
    """
    names = list(names)
    if not names:
        raise ValueError("keras_mtl.tasks.binary_attributes: names must not be empty. Received: names=[]")
    if multi_label is None:
        return [binary(n, hidden=hidden, pool=pool, loss_weight=loss_weight, tap=tap) for n in names]
    head = _trunk_side(multi_label, pool, hidden) + [keras.layers.Dense(len(names), name=multi_label)]
    return [Task(multi_label, head=head,
                 loss=keras.losses.BinaryCrossentropy(from_logits=True),
                 metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
                 loss_weight=loss_weight, tap=tap)]


_REGRESSION_LOSSES = {"mse": keras.losses.MeanSquaredError, "mae": keras.losses.MeanAbsoluteError,
                      "huber": keras.losses.Huber}


def regression(name, units=1, loss="mse", hidden=(), pool=False, mean=None, std=None, loss_weight=1.0,
               tap=None):
    """A regression task (age, a price, a count).

    Head: `pool`, `hidden` as for `classification`, then a linear `Dense(units)`.
    With `mean` and `std` (the training labels'), the dense layer is named
    `{name}_standardised` and predicts a standardised value, at the scale of its
    initial weights, which a `Rescaling(std, offset=mean)` named `name` maps back to
    the labels' unit: loss and prediction stay in that unit. Metrics: MAE, RMSE.

    Labels: `(B, units)` (or `(B,)` for one unit).

    Args:
        loss: "mse", "mae" or "huber" (or a `keras.losses.Loss`).
    """
    units = _check_positive("regression", name, "units", units)
    if (mean is None) != (std is None):
        raise ValueError(f"keras_mtl.tasks.regression('{name}'): give both mean and std or neither. "
                         f"Received: mean={mean!r}, std={std!r}")
    if isinstance(loss, str):
        if loss not in _REGRESSION_LOSSES:
            raise ValueError(f"keras_mtl.tasks.regression('{name}'): loss must be one of "
                             f"{sorted(_REGRESSION_LOSSES)} or a keras.losses.Loss. Received: loss={loss!r}")
        loss = _REGRESSION_LOSSES[loss]()
    head = _trunk_side(name, pool, hidden)
    if mean is None:
        head.append(keras.layers.Dense(units, name=name))
    else:
        head += [keras.layers.Dense(units, name=f"{name}_standardised"),
                 keras.layers.Rescaling(std, offset=mean, name=name)]
    return Task(name, head=head, loss=loss,
                metrics=[keras.metrics.MeanAbsoluteError(name="mae"),
                         keras.metrics.RootMeanSquaredError(name="rmse")],
                loss_weight=loss_weight, tap=tap)


def landmarks(name="landmarks", count=5, mean_shape=None, left_eye=0, right_eye=1, failure_threshold=0.1,
              hidden=(), loss_weight=1.0, tap=None):
    """Facial landmark regression, TCDCN's (Zhang et al., "Facial Landmark Detection
    by Deep Multi-task Learning", ECCV 2014).

    Head: `hidden` ReLU layers, then a linear `Dense(2 count)` named `name`, its bias
    starting at `mean_shape` when given (the mean training face: the first steps need
    not find it). Loss: mean squared error. Metrics: the mean error normalised by the
    inter-ocular distance (`LandmarkMeanError`) and the failure rate at
    `failure_threshold` of that distance, per landmark (`LandmarkFailureRate`).

    Labels: `(B, 2 count)`, the x coordinates then the y coordinates
    (`x1..xK, y1..yK`), e.g. normalised to the face box.

    Args:
        count: number of landmarks K.
        mean_shape: `2 count` values, the initial bias (default zeros).
        left_eye, right_eye: indices of the eye centres among the landmarks.
    """
    count = _check_positive("landmarks", name, "count", count)
    bias = "zeros" if mean_shape is None else keras.initializers.Constant(mean_shape)
    if mean_shape is not None and len(mean_shape) != 2 * count:
        raise ValueError(f"keras_mtl.tasks.landmarks('{name}'): mean_shape needs 2 * count = {2 * count} "
                         f"values. Received: {len(mean_shape)} values")
    head = _trunk_side(name, False, hidden) + [keras.layers.Dense(2 * count, bias_initializer=bias, name=name)]
    return Task(name, head=head, loss=keras.losses.MeanSquaredError(),
                metrics=[metrics_lib.LandmarkMeanError(left_eye, right_eye),
                         metrics_lib.LandmarkFailureRate(failure_threshold, left_eye=left_eye,
                                                         right_eye=right_eye)],
                loss_weight=loss_weight, tap=tap)


def _dense_head(name, channels, width, decoder, **output_options):
    """Decoder blocks (3x3 conv with ReLU, 2x bilinear upsampling) of the `decoder`
    widths, MTAN's 3x3 conv of `width` channels when given, and a 1x1 conv output."""
    layers = []
    for i, filters in enumerate(decoder, start=1):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_head_conv{i}"),
                   keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_head_up{i}")]
    if width:
        layers.append(keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}_head"))
    return layers + [keras.layers.Conv2D(channels, 1, name=name, **output_options)]


def segmentation(name, classes, width=None, ignore_label=-1, decoder=(), from_logits=True, loss_weight=1.0,
                 tap=None):
    """Semantic segmentation with an ignore label.

    Head (`_dense_head`): `decoder` upsampling blocks (each doubles the resolution),
    a 3x3 conv of `width` channels with ReLU (MTAN's head, Liu et al., CVPR 2019)
    when given, and a 1x1 conv of `classes` channels named `name` (softmax when
    `from_logits=False`). Loss: `PixelCrossEntropy(ignore_label)`. Metrics: mean IoU
    and pixel accuracy over the labelled pixels.

    Labels: class indices `(B, H, W)` or `(B, H, W, 1)` at the output's resolution;
    `ignore_label` marks unlabelled pixels.
    """
    classes = _check_positive("segmentation", name, "classes", classes)
    head = _dense_head(name, classes, width, decoder, activation=None if from_logits else "softmax")
    return Task(name, head=head, loss=losses_lib.PixelCrossEntropy(ignore_label, from_logits=from_logits),
                metrics=[metrics_lib.MeanIoU(classes, ignore_label), metrics_lib.PixelAccuracy(classes, ignore_label)],
                loss_weight=loss_weight, tap=tap)


def depth(name="depth", width=None, mean_depth=0.0, decoder=(), loss_weight=1.0, tap=None):
    """Per-pixel depth (MTAN's depth task).

    Head: as for `segmentation`, one output channel whose bias starts at `mean_depth`
    (the mean valid training depth spares the L1 loss a long walk from 0). Loss:
    `DepthL1`. Metrics: absolute and relative error over the valid pixels.

    Labels: depth `(B, H, W)` or `(B, H, W, 1)`; 0, negative or non-finite is missing.
    """
    head = _dense_head(name, 1, width, decoder, bias_initializer=keras.initializers.Constant(mean_depth))
    return Task(name, head=head, loss=losses_lib.DepthL1(),
                metrics=[metrics_lib.DepthAbsError(), metrics_lib.DepthRelError()],
                loss_weight=loss_weight, tap=tap)


def normals(name="normals", width=None, decoder=(), loss_weight=1.0, tap=None):
    """Surface normals (MTAN's normals task).

    Head: as for `segmentation`, three output channels (normalised inside the loss
    and the metrics). Loss: `NormalCosine`. Metrics: mean and median angle error,
    and the fraction of pixels within 11.25, 22.5 and 30 degrees.

    Labels: `(B, H, W, 3)`; the zero vector or a non-finite one is missing.
    """
    return Task(name, head=_dense_head(name, 3, width, decoder), loss=losses_lib.NormalCosine(),
                metrics=[metrics_lib.NormalAngleMean(), metrics_lib.NormalAngleMedian(),
                         metrics_lib.NormalAngleWithin(11.25), metrics_lib.NormalAngleWithin(22.5),
                         metrics_lib.NormalAngleWithin(30)],
                loss_weight=loss_weight, tap=tap)


def verification(name="verification", embedding=64, loss="contrastive", margin=None, mining="batch_hard",
                 normalize=True, pool=True, threshold=None, loss_weight=1.0, tap=None):
    """A verification (metric-learning) task: an embedding trained on identity labels.

    Head: global average pooling (`pool`) and an `EmbeddingHead(embedding,
    normalize)` named `name`. Loss: DeepID2's `ContrastiveLoss` (Sun et al., NIPS
    2014; margin 1.0 by default) or a `TripletLoss` with `mining` (Hermans et al.
    2017; margin 0.2), or a loss object. Metrics: the pair metrics of each batch,
    ROC-AUC of pair distances and recall@1, and with `threshold` the verification
    accuracy at that distance. Train on P x K batches
    (`keras_mtl.datasets.pk_batches`): the losses and metrics read pairs within a batch.

    Labels: integer identities `(B,)`.
    """
    if loss == "contrastive":
        loss = losses_lib.ContrastiveLoss(margin=1.0 if margin is None else margin)
    elif loss == "triplet":
        loss = losses_lib.TripletLoss(mining, margin=0.2 if margin is None else margin)
    elif isinstance(loss, str) or not callable(loss):
        raise ValueError(f"keras_mtl.tasks.verification('{name}'): loss must be 'contrastive', 'triplet' or a "
                         f"loss object. Received: loss={loss!r}")
    metrics = [metrics_lib.PairDistanceAUC(), metrics_lib.RecallAtOne()]
    if threshold is not None:
        metrics.append(metrics_lib.VerificationAccuracy(threshold))
    head = _trunk_side(name, pool, ()) + [EmbeddingHead(embedding, normalize=normalize, name=name)]
    return Task(name, head=head, loss=loss, metrics=metrics, loss_weight=loss_weight, tap=tap)


def detection(num_anchors, tap=None, channels=256, objectness="objectness", boxes="boxes"):
    """Region-proposal detection: Faster R-CNN's RPN as two tasks (see
    `keras_mtl.detection.rpn_tasks`): `objectness` logits `(B, A, 1)` with binary
    cross-entropy and binary accuracy, `boxes` offsets `(B, A, 4)` with smooth L1.
    `keras_mtl.detection.rpn_targets` makes their labels and sample weights.

    Returns:
        `[objectness task, boxes task]`.
    """
    return rpn_tasks(num_anchors, tap=tap, channels=channels, objectness=objectness, regression=boxes)


__all__ = ["binary", "binary_attributes", "classification", "depth", "detection", "landmarks", "normals",
           "regression", "segmentation", "verification"]
