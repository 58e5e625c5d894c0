"""Landmark metrics against a numpy computation written point by point."""

import keras
import numpy as np
import pytest

from keras_mtl.metrics.landmark_error import LandmarkMeanError
from keras_mtl.metrics.landmark_failure_rate import LandmarkFailureRate


def _points(flat):
    """(batch, 10) in x1..x5, y1..y5 order -> (batch, 5, 2)."""
    return np.stack([flat[:, :5], flat[:, 5:]], axis=-1)


def _numpy_errors(y_true, y_pred, left_eye=0, right_eye=1):
    true, pred = _points(y_true), _points(y_pred)
    errors = np.zeros(true.shape[:2])
    for b in range(true.shape[0]):
        ocular = np.hypot(*(true[b, left_eye] - true[b, right_eye]))
        for k in range(true.shape[1]):
            errors[b, k] = np.hypot(*(pred[b, k] - true[b, k])) / ocular
    return errors


@pytest.fixture
def landmarks():
    rng = np.random.default_rng(3)
    y_true = rng.uniform(0.2, 0.8, size=(12, 10)).astype("float32")
    # Errors of mixed size so that some, not all, cross the 10% threshold.
    y_pred = (y_true + rng.normal(0.0, 0.04, size=y_true.shape)).astype("float32")
    return y_true, y_pred


def test_mean_error_matches_numpy(landmarks):
    y_true, y_pred = landmarks
    metric = LandmarkMeanError()
    metric.update_state(y_true[:5], y_pred[:5])
    metric.update_state(y_true[5:], y_pred[5:])
    expected = _numpy_errors(y_true, y_pred).mean()
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)


def test_mean_error_other_eyes_and_sample_weight(landmarks):
    y_true, y_pred = landmarks
    weight = np.linspace(0.0, 2.0, len(y_true)).astype("float32")
    metric = LandmarkMeanError(left_eye=3, right_eye=4)
    metric.update_state(y_true, y_pred, sample_weight=weight)
    per_image = _numpy_errors(y_true, y_pred, 3, 4).mean(axis=1)
    np.testing.assert_allclose(float(metric.result()), np.sum(per_image * weight) / weight.sum(),
                               rtol=1e-5)


@pytest.mark.parametrize("per_image", [False, True])
def test_failure_rate_matches_numpy(landmarks, per_image):
    y_true, y_pred = landmarks
    errors = _numpy_errors(y_true, y_pred)
    expected = (errors.mean(axis=1) > 0.1).mean() if per_image else (errors > 0.1).mean()
    assert 0.0 < expected < 1.0
    metric = LandmarkFailureRate(threshold=0.1, per_image=per_image)
    metric.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_failure_rate_as_compiled_metric_and_round_trip(landmarks):
    y_true, y_pred = landmarks
    inputs = keras.Input((10,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss="mse", metrics=[LandmarkFailureRate(threshold=0.05), LandmarkMeanError()])
    logs = model.evaluate(y_pred, y_true, batch_size=5, return_dict=True, verbose=0)
    errors = _numpy_errors(y_true, y_pred)
    np.testing.assert_allclose(logs["landmark_failure_rate"], (errors > 0.05).mean(), rtol=1e-6)
    np.testing.assert_allclose(logs["landmark_mean_error"], errors.mean(), rtol=1e-5)
    clone = LandmarkFailureRate.from_config(LandmarkFailureRate(0.2, per_image=True).get_config())
    assert (clone.threshold, clone.per_image) == (0.2, True)


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"left_eye": 1, "right_eye": 1},
                                    {"left_eye": -1}])
def test_bad_arguments_are_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LandmarkFailureRate(**kwargs)
