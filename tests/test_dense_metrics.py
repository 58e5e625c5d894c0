"""Dense-prediction metrics against numpy, accumulated over several batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.metrics import (DepthAbsError, DepthRelError, MeanIoU, NormalAngleMean,
                               NormalAngleMedian, NormalAngleWithin, PixelAccuracy)

RNG = np.random.default_rng(3)
C = 4


def _segmentation_batches():
    """Batches of different sizes, with ignored pixels and a class never predicted."""
    batches = []
    for n in (2, 5, 1):
        labels = RNG.integers(0, C, size=(n, 6, 7)).astype(np.int32)
        labels[RNG.random(labels.shape) < 0.15] = -1
        logits = RNG.normal(size=(n, 6, 7, C)).astype(np.float32)
        logits[..., 3] -= 10.0
        logits += 2.5 * np.eye(C)[np.maximum(labels, 0)]  # better than chance
        batches.append((labels, logits))
    return batches


def _numpy_confusion(batches):
    labels = np.concatenate([b[0].ravel() for b in batches])
    pred = np.concatenate([b[1].argmax(-1).ravel() for b in batches])
    keep = labels != -1
    confusion = np.zeros((C, C))
    np.add.at(confusion, (labels[keep], pred[keep]), 1)
    return confusion


def _numpy_miou(confusion):
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return np.mean(tp[union > 0] / union[union > 0])


def test_segmentation_metrics_accumulate_the_epoch_confusion_matrix():
    batches = _segmentation_batches()
    miou, accuracy = MeanIoU(C), PixelAccuracy(C)
    for labels, logits in batches:
        miou.update_state(labels, logits)
        accuracy.update_state(labels[..., None], logits)
    confusion = _numpy_confusion(batches)
    np.testing.assert_allclose(miou.confusion.numpy(), confusion)
    np.testing.assert_allclose(miou.result(), _numpy_miou(confusion), rtol=1e-6)
    np.testing.assert_allclose(accuracy.result(), np.trace(confusion) / confusion.sum(), rtol=1e-6)
    batch_means = np.mean([_numpy_miou(_numpy_confusion([b])) for b in batches])
    assert abs(batch_means - _numpy_miou(confusion)) > 1e-3  # the test can tell them apart
    miou.reset_state()
    miou.update_state(*batches[0])
    np.testing.assert_allclose(miou.result(), _numpy_miou(_numpy_confusion(batches[:1])), rtol=1e-6)


def test_segmentation_metrics_take_class_indices_and_weights():
    labels, logits = _segmentation_batches()[1]
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5], np.float32)
    accuracy = PixelAccuracy(C)
    accuracy.update_state(labels, logits.argmax(-1), sample_weight=weights)
    correct = (labels == logits.argmax(-1)) & (labels != -1)
    w = np.broadcast_to(weights[:, None, None], labels.shape) * (labels != -1)
    np.testing.assert_allclose(accuracy.result(), (w * correct).sum() / w.sum(), rtol=1e-6)
    ignore255 = MeanIoU(C, ignore_label=255)
    ignore255.update_state(np.where(labels == -1, 255, labels), logits)
    np.testing.assert_allclose(ignore255.result(), _numpy_miou(_numpy_confusion([(labels, logits)])),
                               rtol=1e-6)


def _depth_batches():
    batches = []
    for n in (3, 1):
        true = RNG.uniform(0.5, 9.0, size=(n, 5, 4, 1)).astype(np.float32)
        true[RNG.random(true.shape) < 0.3] = 0.0
        batches.append((true, (true + RNG.normal(scale=0.7, size=true.shape)).astype(np.float32)))
    return batches


def test_depth_errors_average_over_all_valid_pixels_of_the_epoch():
    batches = _depth_batches()
    absolute, relative = DepthAbsError(), DepthRelError()
    for true, pred in batches:
        absolute.update_state(true, pred)
        relative.update_state(true[..., 0], pred)
    true = np.concatenate([b[0] for b in batches]).astype(np.float64)
    pred = np.concatenate([b[1] for b in batches]).astype(np.float64)
    valid = true > 0
    np.testing.assert_allclose(absolute.result(), np.abs(pred - true)[valid].mean(), rtol=1e-5)
    np.testing.assert_allclose(relative.result(), (np.abs(pred - true)[valid] / true[valid]).mean(),
                               rtol=1e-5)


def _normal_batches(count=3, size=(4, 20, 24)):
    batches = []
    for _ in range(count):
        true = RNG.normal(size=size + (3,))
        true /= np.linalg.norm(true, axis=-1, keepdims=True)
        true[RNG.random(size) < 0.1] = 0.0
        pred = true + RNG.normal(scale=RNG.uniform(0.05, 0.8), size=true.shape)
        pred *= RNG.uniform(0.2, 3.0, size=size + (1,))  # not unit length
        batches.append((true.astype(np.float32), pred.astype(np.float32)))
    return batches


def _numpy_angles(batches):
    angles = []
    for true, pred in batches:
        valid = np.abs(true).sum(-1) > 0
        p = pred / np.linalg.norm(pred, axis=-1, keepdims=True)
        t = true.astype(np.float64)
        cos = np.clip((p.astype(np.float64) * t).sum(-1), -1, 1)
        angles.append(np.degrees(np.arccos(cos))[valid])
    return np.concatenate(angles)


def test_normal_angle_metrics_match_numpy_including_the_median():
    batches = _normal_batches()
    metrics = [NormalAngleMean(), NormalAngleMedian(), NormalAngleWithin(11.25),
               NormalAngleWithin(22.5), NormalAngleWithin(30)]
    for true, pred in batches:
        for metric in metrics:
            metric.update_state(true, pred)
    angles = _numpy_angles(batches)
    assert [m.name for m in metrics] == ["angle_mean", "angle_median", "within_11.25",
                                         "within_22.5", "within_30"]
    np.testing.assert_allclose(metrics[0].result(), angles.mean(), rtol=1e-5)
    assert abs(float(metrics[1].result()) - np.median(angles)) <= 180.0 / 18000
    for metric, threshold in zip(metrics[2:], (11.25, 22.5, 30.0)):
        np.testing.assert_allclose(metric.result(), np.mean(angles < threshold), atol=1e-6)


@pytest.mark.parametrize("bins", [180, 1000, 18000])
def test_histogram_median_is_within_one_bin_of_the_middle_order_statistics(bins):
    width = 180.0 / bins
    for trial in range(4):
        n = int(RNG.integers(1, 40))
        angles = RNG.uniform(0, 180, size=n) if trial % 2 else RNG.choice([3.0, 90.0, 171.0], size=n)
        direction = np.stack([np.sin(np.radians(angles)), np.zeros(n), np.cos(np.radians(angles))], -1)
        true = np.tile([0.0, 0.0, 1.0], (n, 1))
        metric = NormalAngleMedian(bins=bins)
        metric.update_state(true[None].astype(np.float32), direction[None].astype(np.float32))
        ordered = np.sort(angles)
        low, high = ordered[(n - 1) // 2], ordered[n // 2]
        assert low - width - 1e-4 <= float(metric.result()) <= high + width + 1e-4


def test_metrics_weight_pixels_and_run_compiled():
    true, pred = _normal_batches(1, (2, 8, 9))[0]
    weights = np.array([0.0, 1.0], np.float32)
    metric = NormalAngleMedian()
    mean = NormalAngleMean()

    @tf.function(jit_compile=True)
    def update(t, p, w):
        metric.update_state(t, p, sample_weight=w)
        mean.update_state(t, p, sample_weight=w)

    update(true, pred, weights)
    ordered = np.sort(_numpy_angles([(true[1:], pred[1:])]))
    n = len(ordered)
    assert ordered[(n - 1) // 2] - 0.0101 <= float(metric.result()) <= ordered[n // 2] + 0.0101
    angles = ordered
    np.testing.assert_allclose(mean.result(), angles.mean(), rtol=1e-5)


@pytest.mark.parametrize("metric", [MeanIoU(5, ignore_label=255), PixelAccuracy(3),
                                    DepthAbsError(), DepthRelError(name="rel"), NormalAngleMean(),
                                    NormalAngleMedian(bins=360), NormalAngleWithin(22.5)])
def test_metrics_round_trip_through_config(metric):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_classes"):
        MeanIoU(0)
    with pytest.raises(ValueError, match="threshold"):
        NormalAngleWithin(0)
    with pytest.raises(ValueError, match="bins"):
        NormalAngleMedian(bins=0)
