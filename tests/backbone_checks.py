"""Checks of the `keras.applications` backbones (`keras_mtl.backbones.keras_applications`),
run on TensorFlow by `tests/test_backbones_keras_applications.py` and on JAX by
`tests/jax/test_backbones_keras_applications.py`."""

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl import backbones, tasks
from keras_mtl.backbones.keras_applications import MODELS

STRIDES = {"mobilenetv3small": (4, 8, 16, 32)}


def check_taps_are_the_last_block_output_at_each_stride(name, path):
    model = backbones.get(name)((64, 64, 3))
    taps = backbones.taps(name)
    assert [64 // model.get_layer(t).output.shape[1] for t in taps] == list(STRIDES.get(name, (2, 4, 8, 16, 32)))
    layers = [layer.name for layer in model.layers]
    for tap, following in zip(taps, taps[1:] + [None]):
        # No later layer keeps the tap's resolution before the next tap's stride begins.
        size = model.get_layer(tap).output.shape[1]
        later = layers[layers.index(tap) + 1:layers.index(following) if following else None]
        same = [n for n in later if len(model.get_layer(n).output.shape) == 4
                and model.get_layer(n).output.shape[1] == size and n.endswith(("_add", "_out", "_project_bn"))]
        assert not same, (tap, same)


def check_trains_as_the_shared_trunk_with_a_tap(name, path):
    taps = backbones.taps(name)
    model = keras_mtl.build("hard_sharing", [tasks.classification("early", 3, pool=True, tap=taps[1]),
                                             tasks.classification("late", 2, pool=True)],
                            backbone=name, input_shape=(32, 32, 3))
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32") * 255
    history = model.fit(x, {"early": np.array([0, 1, 2, 0]), "late": np.array([0, 1, 1, 0])}, epochs=1,
                        verbose=0).history
    assert np.isfinite(history["loss"][0])


def check_loads_a_weights_file_and_copies_it_under_a_prefix(name, path):
    source = backbones.get(name)((32, 32, 3))
    file = str(path / f"{name}.weights.h5")
    source.save_weights(file)
    loaded = backbones.get(name)((32, 32, 3), weights=file)
    copy = backbones.get(name)((32, 32, 3), weights=file, prefix="left_")
    assert all(layer.name.startswith("left_") for layer in copy.layers[1:])  # all but the input
    for model in (loaded, copy):
        for a, b in zip(source.weights, model.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match=f"backbone '{name}': keras_mtl never downloads weights"):
        backbones.get(name)((32, 32, 3), weights="imagenet")


def check_registry_lists_taps():
    assert set(MODELS) <= set(backbones.available())
    assert backbones.taps("conv") == ["block1", "block2", "block3"]
    with pytest.raises(ValueError, match="Unknown backbone: backbone='resnet18'"):
        backbones.taps("resnet18")
    keras.backend.clear_session()


PER_MODEL = {"taps": check_taps_are_the_last_block_output_at_each_stride,
             "trains": check_trains_as_the_shared_trunk_with_a_tap,
             "weights_file": check_loads_a_weights_file_and_copies_it_under_a_prefix}


def params(fast=()):
    """pytest parameters `(check, name)` of every check of `PER_MODEL` and model: those
    in `fast` in the fast tier, the others in the slow."""
    return [pytest.param(check, name, marks=[] if (check, name) in fast else [pytest.mark.slow], id=f"{check}-{name}")
            for check in PER_MODEL for name in sorted(MODELS)]
