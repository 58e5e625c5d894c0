"""GlobalBatchNormalization: synchronized batch norm whose config loads on any backend."""

import keras
import numpy as np

from keras_mtl.layers import GlobalBatchNormalization


def test_normalises_with_batch_statistics_like_the_formula():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(16, 5)).astype("float32")
    layer = GlobalBatchNormalization(epsilon=1e-3, momentum=0.9)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # The moving statistics move towards the batch's: 0.9 * init + 0.1 * batch.
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-4)
    assert layer.synchronized == (keras.backend.backend() == "tensorflow")


def test_config_leaves_synchronized_out_and_round_trips(tmp_path):
    layer = GlobalBatchNormalization(momentum=0.9, name="bn")
    config = layer.get_config()
    assert "synchronized" not in config and config["momentum"] == 0.9
    assert GlobalBatchNormalization.from_config({**config, "synchronized": False}).synchronized == \
        (keras.backend.backend() == "tensorflow")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, GlobalBatchNormalization(name="bn")(inputs))
    model.layers[1].moving_mean.assign([1.0, 2.0, 3.0])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[1], GlobalBatchNormalization)
    np.testing.assert_array_equal(loaded.layers[1].moving_mean.numpy(), [1.0, 2.0, 3.0])
