"""The SegNet backbone: full-resolution output, named taps, use in build()."""

import functools

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl.backbones.segnet import segnet


def test_segnet_output_is_full_resolution_with_named_blocks():
    model = segnet((16, 24, 3), filters=(4, 6, 8), convs_per_block=2)
    assert model.output_shape == (None, 16, 24, 4)
    for i, (scale, channels) in enumerate([(2, 4), (4, 6), (8, 8)], start=1):
        assert model.get_layer(f"encoder{i}").output.shape == (None, 16 // scale, 24 // scale, channels)
    assert model.get_layer("decoder3").output.shape == (None, 4, 6, 6)
    assert model.get_layer("decoder2").output.shape == (None, 8, 12, 4)
    assert model.get_layer("decoder1").output.shape == (None, 16, 24, 4)
    per_level = segnet((16, 24, 3), filters=(4, 6, 8), convs_per_block=(1, 2, 3), prefix="p_")
    convs = [l.name for l in per_level.layers if isinstance(l, keras.layers.Conv2D)]
    assert sum(n.startswith("p_enc3_") for n in convs) == sum(n.startswith("p_dec3_") for n in convs) == 3
    assert len(convs) == 2 * (1 + 2 + 3)
    x = np.random.default_rng(0).random((2, 16, 24, 3)).astype(np.float32)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_segnet_in_hard_sharing_and_single_task_models_with_taps():
    backbone = functools.partial(segnet, filters=(4, 8), convs_per_block=1)
    tasks = lambda: [keras_mtl.Task("a", head=keras.layers.Conv2D(2, 1)),
                     keras_mtl.Task("b", head=keras.layers.Conv2D(1, 1), tap="decoder2")]
    for architecture in ("hard_sharing", "single_task"):
        model = keras_mtl.build(architecture, tasks(), backbone=backbone, input_shape=(8, 12, 3))
        assert model.get_layer("a").output.shape == (None, 8, 12, 2)
        assert model.get_layer("b").output.shape == (None, 4, 6, 1)


def test_segnet_rejects_sizes_it_cannot_pool():
    with pytest.raises(ValueError, match="multiples of 8"):
        segnet((20, 24, 3), filters=(4, 4, 4))
    with pytest.raises(ValueError, match="filters"):
        segnet((16, 16, 3), filters=())
    with pytest.raises(ValueError, match="convs_per_block"):
        segnet((16, 16, 3), filters=(4, 4), convs_per_block=(1, 2, 3))
