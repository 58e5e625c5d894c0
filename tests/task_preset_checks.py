"""Checks of `keras_mtl.tasks` (the presets' heads, losses and metrics) against
float64 numpy values written from the losses' definitions, run on TensorFlow by
`tests/test_tasks.py` and on JAX by `tests/jax/test_tasks.py`."""

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl import tasks
from keras_mtl.detection import SmoothL1

import metric_learning_references as references

RNG = np.random.default_rng(7)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _loss(task, y_true, y_pred):
    return float(_np(task.loss(y_true.astype("float32") if y_true.dtype.kind == "f" else y_true,
                               y_pred.astype("float32"))))


def _metric_types(task):
    return [type(m).__name__ for m in task.metrics]


def _head_output(task, input_shape):
    return task.apply_head(keras.Input(input_shape))


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def check_classification():
    task = tasks.classification("breed", 4, hidden=(8,), pool=True)
    out = _head_output(task, (6, 6, 5))
    assert tuple(out.shape) == (None, 4)
    assert [layer.name for layer in task.head] == ["breed_pool", "breed_hidden1", "breed"]
    assert _metric_types(task) == ["SparseCategoricalAccuracy"]
    logits = RNG.normal(size=(5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    expected = -np.mean(_log_softmax(logits)[np.arange(5), labels])
    np.testing.assert_allclose(_loss(task, labels, logits), expected, rtol=1e-5)
    probabilities = tasks.classification("breed", 4, from_logits=False)
    assert probabilities.head[-1].activation is keras.activations.softmax
    p = np.exp(_log_softmax(logits))
    np.testing.assert_allclose(_loss(probabilities, labels, p), expected, rtol=1e-5)


def check_binary():
    task = tasks.binary("income", hidden=(16,))
    assert tuple(_head_output(task, (7,)).shape) == (None, 1)
    assert _metric_types(task) == ["BinaryAccuracy", "AUC"]
    assert task.metrics[0].threshold == 0.0
    logits = RNG.normal(size=(6, 1)) * 4
    labels = np.array([[0], [1], [1], [0], [1], [0]], np.float64)
    expected = np.mean(np.logaddexp(0, logits) - labels * logits)
    np.testing.assert_allclose(_loss(task, labels, logits), expected, rtol=1e-5)
    sigmoid = tasks.binary("income", from_logits=False)
    assert sigmoid.metrics[0].threshold == 0.5


def check_binary_attributes():
    names = ["smiling", "young", "bald"]
    per_attribute = tasks.binary_attributes(names, loss_weight=0.5)
    assert [t.name for t in per_attribute] == names
    assert all(t.loss_weight == 0.5 and _metric_types(t) == ["BinaryAccuracy", "AUC"] for t in per_attribute)
    (multi,) = tasks.binary_attributes(names, multi_label="attributes")
    assert multi.name == "attributes" and tuple(_head_output(multi, (9,)).shape) == (None, 3)
    assert _metric_types(multi) == ["BinaryAccuracy"]
    logits = RNG.normal(size=(4, 3)) * 2
    labels = (RNG.random((4, 3)) > 0.5).astype(np.float64)
    expected = np.mean(np.logaddexp(0, logits) - labels * logits)
    np.testing.assert_allclose(_loss(multi, labels, logits), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="names must not be empty"):
        tasks.binary_attributes([])


def check_regression():
    task = tasks.regression("age", loss="mae", mean=33.0, std=19.5)
    model = keras.Model(inputs := keras.Input((5,)), task.apply_head(inputs))
    assert [layer.name for layer in task.head] == ["age_standardised", "age"]
    features = RNG.normal(size=(3, 5))
    dense = task.head[0]
    expected = (features @ dense.kernel.numpy() + dense.bias.numpy()) * 19.5 + 33.0
    np.testing.assert_allclose(_np(model(features.astype("float32"))), expected, rtol=1e-5)
    assert _metric_types(task) == ["MeanAbsoluteError", "RootMeanSquaredError"]
    labels, predictions = RNG.normal(size=(6, 1)) * 10, RNG.normal(size=(6, 1)) * 10
    np.testing.assert_allclose(_loss(task, labels, predictions), np.mean(np.abs(labels - predictions)), rtol=1e-5)
    mse = tasks.regression("price", units=2)
    labels, predictions = RNG.normal(size=(6, 2)), RNG.normal(size=(6, 2))
    np.testing.assert_allclose(_loss(mse, labels, predictions), np.mean((labels - predictions) ** 2), rtol=1e-5)
    with pytest.raises(ValueError, match="regression\\('age'\\).*loss=.*'l3'"):
        tasks.regression("age", loss="l3")
    with pytest.raises(ValueError, match="both mean and std"):
        tasks.regression("age", mean=1.0)


def check_landmarks():
    mean_shape = np.linspace(0.2, 0.8, 10)
    task = tasks.landmarks(mean_shape=mean_shape)
    model = keras.Model(inputs := keras.Input((4,)), task.apply_head(inputs))
    np.testing.assert_allclose(_np(model(np.zeros((1, 4), "float32")))[0], mean_shape, rtol=1e-6)
    assert _metric_types(task) == ["LandmarkMeanError", "LandmarkFailureRate"]
    true = RNG.random((4, 10))
    predicted = true + RNG.normal(size=(4, 10)) * 0.05
    np.testing.assert_allclose(_loss(task, true, predicted), np.mean((true - predicted) ** 2), rtol=1e-5)
    errors = np.hypot(predicted[:, :5] - true[:, :5], predicted[:, 5:] - true[:, 5:])
    ocular = np.hypot(true[:, 0] - true[:, 1], true[:, 5] - true[:, 6])[:, None]
    normalised = errors / ocular
    for metric, expected in zip(task.metrics, (normalised.mean(), np.mean(normalised > 0.1))):
        metric.update_state(true.astype("float32"), predicted.astype("float32"))
        np.testing.assert_allclose(float(_np(metric.result())), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="mean_shape needs 2 \\* count = 10"):
        tasks.landmarks(mean_shape=[0.5] * 4)


def check_segmentation():
    task = tasks.segmentation("segmentation", 3, width=8, ignore_label=255, decoder=(4,))
    assert tuple(_head_output(task, (4, 6, 5)).shape) == (None, 8, 12, 3)
    assert [layer.name for layer in task.head][-2:] == ["segmentation_head", "segmentation"]
    assert _metric_types(task) == ["MeanIoU", "PixelAccuracy"]
    assert all(m.ignore_label == 255 for m in task.metrics)
    logits = RNG.normal(size=(3, 4, 5, 3)) * 3
    labels = RNG.integers(0, 3, size=(3, 4, 5))
    labels[0, :2] = 255
    labels[2] = 255  # an image with no labelled pixel adds 0
    log_p = _log_softmax(logits)
    per_image = []
    for b in range(3):
        valid = labels[b] != 255
        picked = [-log_p[b, i, j, labels[b, i, j]] for i, j in zip(*np.nonzero(valid))]
        per_image.append(np.mean(picked) if picked else 0.0)
    np.testing.assert_allclose(_loss(task, labels, logits), np.mean(per_image), rtol=1e-5)
    softmax = tasks.segmentation("segmentation", 3, from_logits=False)
    np.testing.assert_allclose(_loss(softmax, np.where(labels == 255, -1, labels), np.exp(log_p)),
                               np.mean(per_image), rtol=1e-5)


def check_depth():
    task = tasks.depth(width=4, mean_depth=2.5)
    model = keras.Model(inputs := keras.Input((4, 4, 2)), task.apply_head(inputs))
    assert tuple(model.output.shape) == (None, 4, 4, 1)
    np.testing.assert_allclose(_np(model(np.zeros((1, 4, 4, 2), "float32"))), 2.5, rtol=1e-6)
    assert _metric_types(task) == ["DepthAbsError", "DepthRelError"]
    true = RNG.random((2, 3, 3, 1)) * 5 + 0.5
    true[0, 0, 0, 0] = 0.0  # missing
    true[1, 1, :, 0] = np.nan
    predicted = RNG.random((2, 3, 3, 1)) * 5
    per_image = [np.nanmean(np.where(true[b] > 0, np.abs(predicted[b] - true[b]), np.nan)) for b in range(2)]
    np.testing.assert_allclose(_loss(task, true, predicted), np.mean(per_image), rtol=1e-5)


def check_normals():
    task = tasks.normals(width=4)
    assert tuple(_head_output(task, (4, 4, 2)).shape) == (None, 4, 4, 3)
    assert _metric_types(task) == ["NormalAngleMean", "NormalAngleMedian"] + ["NormalAngleWithin"] * 3
    assert [m.threshold for m in task.metrics[2:]] == [11.25, 22.5, 30]
    true = RNG.normal(size=(2, 3, 3, 3))
    true[0, 0, 0] = 0.0  # missing
    predicted = RNG.normal(size=(2, 3, 3, 3)) * 4
    unit = lambda v: v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    cosine = np.sum(unit(true) * unit(predicted), axis=-1)
    valid = np.linalg.norm(true, axis=-1) > 0
    per_image = [np.mean(1 - cosine[b][valid[b]]) for b in range(2)]
    np.testing.assert_allclose(_loss(task, true, predicted), np.mean(per_image), rtol=1e-5)


def check_verification():
    task = tasks.verification(embedding=6, margin=1.5, threshold=0.7)
    out = _head_output(task, (3, 3, 4))
    assert tuple(out.shape) == (None, 6) and [layer.name for layer in task.head] == [
        "verification_pool", "verification"]
    assert task.head[-1].normalize
    assert _metric_types(task) == ["PairDistanceAUC", "RecallAtOne", "VerificationAccuracy"]
    labels = np.array([0, 0, 1, 1, 2, 1])
    embeddings = RNG.normal(size=(6, 6)) * 0.5
    expected = references.contrastive(labels, embeddings, np.ones(6), 1.5)
    np.testing.assert_allclose(_loss(task, labels, embeddings), expected, rtol=1e-5)
    triplet = tasks.verification(loss="triplet", mining="batch_all")
    assert type(triplet.loss).__name__ == "TripletLoss" and triplet.loss.margin == 0.2
    assert triplet.loss.mining == "batch_all" and len(triplet.metrics) == 2
    with pytest.raises(ValueError, match="verification\\('verification'\\): loss must be"):
        tasks.verification(loss="arcface")


def check_detection():
    objectness, boxes = tasks.detection(num_anchors=3, tap="block2", channels=8)
    assert (objectness.name, boxes.name, objectness.tap) == ("objectness", "boxes", "block2")
    assert isinstance(boxes.loss, SmoothL1) and _metric_types(objectness) == ["BinaryAccuracy"]
    model = keras_mtl.build("hard_sharing", [objectness, boxes], backbone="conv", input_shape=(16, 16, 3))
    assert tuple(model.get_layer("boxes").output.shape) == (None, 4 * 4 * 3, 4)


def check_head_layers_are_made_in_the_order_they_are_applied():
    # Unseeded initializers draw their seeds when a layer is made: the preset's
    # weights are those of the same layers made by hand in order.
    features = RNG.normal(size=(3, 5)).astype("float32")
    keras.utils.set_random_seed(3)
    task = tasks.binary("income", hidden=(4, 2))
    preset = keras.Model(inputs := keras.Input((5,)), task.apply_head(inputs))
    keras.utils.set_random_seed(3)
    by_hand = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                                keras.layers.Dense(2, activation="relu"), keras.layers.Dense(1)])
    np.testing.assert_array_equal(_np(preset(features)), _np(by_hand(features)))


def check_argument_errors():
    with pytest.raises(ValueError, match="classification\\('breed'\\): classes must be an integer >= 1. "
                                         "Received: classes=0"):
        tasks.classification("breed", 0)
    with pytest.raises(ValueError, match="segmentation\\('seg'\\): classes"):
        tasks.segmentation("seg", 2.5)


CHECKS = {name[len("check_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("check_")}
