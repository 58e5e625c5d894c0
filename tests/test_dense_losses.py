"""Dense-prediction losses against numpy on inputs with invalid labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.losses import DepthL1, NormalCosine, PixelCrossEntropy, ScaleInvariantDepth

RNG = np.random.default_rng(7)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _per_image_mean(values, valid):
    values = np.where(valid, values, 0.0).reshape(len(values), -1).sum(1)
    count = valid.reshape(len(valid), -1).sum(1)
    return np.where(count > 0, values / np.maximum(count, 1), 0.0)


def _depth_batch():
    true = RNG.uniform(0.5, 8.0, size=(3, 5, 6, 1)).astype(np.float32)
    true[0, :2] = 0.0
    true[1, 3, 4, 0] = np.nan
    true[2] = 0.0  # an image without any depth
    pred = RNG.uniform(0.2, 9.0, size=true.shape).astype(np.float32)
    return true, pred


def test_pixel_cross_entropy_matches_numpy_and_ignores_label():
    logits = RNG.normal(size=(3, 4, 5, 4)).astype(np.float32) * 3
    labels = RNG.integers(0, 4, size=(3, 4, 5)).astype(np.int32)
    labels[0, 0] = -1
    labels[2, 1:3, 2:] = -1
    nll = -np.take_along_axis(_log_softmax(logits.astype(np.float64)), np.maximum(labels, 0)[..., None], -1)[..., 0]
    expected = _per_image_mean(nll, labels != -1).mean()
    np.testing.assert_allclose(PixelCrossEntropy()(labels, logits), expected, rtol=1e-5)
    # Channel-last labels, another ignore label, and probabilities instead of logits.
    labels255 = np.where(labels == -1, 255, labels)[..., None]
    probs = np.exp(_log_softmax(logits)).astype(np.float32)
    loss = PixelCrossEntropy(ignore_label=255, from_logits=False)
    np.testing.assert_allclose(loss(labels255, probs), expected, rtol=1e-4)
    # Changing the logits of ignored pixels changes nothing.
    changed = logits.copy()
    changed[labels == -1] += 50.0
    np.testing.assert_allclose(PixelCrossEntropy()(labels, changed), expected, rtol=1e-5)


def test_depth_l1_masks_missing_depth_and_weights_examples():
    true, pred = _depth_batch()
    valid = np.isfinite(true) & (true > 0)
    per_image = _per_image_mean(np.abs(pred - np.nan_to_num(true)), valid)
    np.testing.assert_allclose(DepthL1()(true, pred), per_image.mean(), rtol=1e-5)
    weights = np.array([1.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(DepthL1()(true, pred, sample_weight=weights),
                               (per_image * weights).sum() / 3, rtol=1e-5)
    np.testing.assert_allclose(DepthL1()(true[..., 0], pred), per_image.mean(), rtol=1e-5)


def test_scale_invariant_depth_matches_eigen_formula():
    true, pred = _depth_batch()
    valid = np.isfinite(true) & (true > 0)
    for focus in (0.0, 0.5, 1.0):
        d = np.log(pred.astype(np.float64)) - np.log(np.where(valid, true, 1.0))
        expected = _per_image_mean(d ** 2, valid) - focus * _per_image_mean(d, valid) ** 2
        np.testing.assert_allclose(ScaleInvariantDepth(variance_focus=focus)(true, pred),
                                   expected.mean(), rtol=1e-4)
    # With lambda = 1 a global scale of the prediction costs nothing.
    loss = ScaleInvariantDepth(variance_focus=1.0)
    np.testing.assert_allclose(loss(true, 3.0 * pred), loss(true, pred), rtol=1e-3, atol=1e-6)


def test_normal_cosine_matches_numpy():
    true = RNG.normal(size=(2, 4, 5, 3))
    true /= np.linalg.norm(true, axis=-1, keepdims=True)
    true[0, 0] = 0.0
    true = true.astype(np.float32)
    pred = (RNG.normal(size=true.shape) * RNG.uniform(0.1, 5, size=true.shape[:-1] + (1,))).astype(np.float32)
    cos = (pred / np.linalg.norm(pred, axis=-1, keepdims=True) * true).sum(-1)
    expected = _per_image_mean(1 - cos, np.abs(true).sum(-1) > 0).mean()
    np.testing.assert_allclose(NormalCosine()(true, pred), expected, rtol=1e-5)
    np.testing.assert_allclose(NormalCosine()(true, true), 0.0, atol=1e-6)


@pytest.mark.parametrize("loss", [PixelCrossEntropy(), DepthL1(), ScaleInvariantDepth(), NormalCosine()])
def test_gradients_stay_finite_with_invalid_labels(loss):
    if isinstance(loss, PixelCrossEntropy):
        true = np.full((2, 3, 4), -1, np.int32)
        true[1, 0, 0] = 2
        pred = tf.Variable(RNG.normal(size=(2, 3, 4, 3)).astype(np.float32))
    elif isinstance(loss, NormalCosine):
        true = np.zeros((2, 3, 4, 3), np.float32)
        true[1, 0, 0] = [np.nan, 0, 0]
        true[1, 1, 1] = [0, 0, 1]
        pred = tf.Variable(np.zeros((2, 3, 4, 3), np.float32))
    else:
        true, _ = _depth_batch()
        pred = tf.Variable(np.zeros(true.shape, np.float32))
    with tf.GradientTape() as tape:
        value = loss(true, pred)
    grad = tape.gradient(value, pred)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(grad.numpy()))


@pytest.mark.parametrize("loss", [PixelCrossEntropy(ignore_label=255, from_logits=False),
                                  DepthL1(reduction="sum"),
                                  ScaleInvariantDepth(variance_focus=0.85, min_depth=0.01),
                                  NormalCosine(name="n")])
def test_losses_round_trip_through_config(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="variance_focus"):
        ScaleInvariantDepth(variance_focus=2.0)
    with pytest.raises(ValueError, match="min_depth"):
        ScaleInvariantDepth(min_depth=0.0)
    with pytest.raises(ValueError, match="ignore_label"):
        PixelCrossEntropy(ignore_label=0.5)
