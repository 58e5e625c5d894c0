"""Smoke checks of every `keras_mtl.zoo` model at a tiny size: build, one training
step, a `.keras` round trip with the same predictions, and SavedModel export; run on
TensorFlow by `tests/test_zoo.py`, on JAX by `tests/jax/test_zoo.py` and on PyTorch
(without the export, which needs torch_xla there) by `tests/pytorch/test_zoo.py`."""

import keras
import numpy as np

import keras_mtl
from keras_mtl import zoo

B = 4


def _images(size=16):
    return np.random.default_rng(0).random((B, size, size, 3)).astype("float32")


def _ints(high, shape=(B,)):
    return np.random.default_rng(1).integers(0, high, size=shape)


def _dense_labels(names):
    rng = np.random.default_rng(2)
    labels = {"segmentation": rng.integers(0, 7, (B, 16, 16)),
              "depth": rng.random((B, 16, 16, 1)).astype("float32") + 0.5,
              "normals": rng.normal(size=(B, 16, 16, 3)).astype("float32")}
    return {n: labels[n] for n in names}


def _census():
    x = np.random.default_rng(3).random((B, 12)).astype("float32")
    return x, {"income": _ints(2).astype("float32"), "marital": _ints(2).astype("float32")}


_IDENTITIES = np.array([0, 0, 1, 1])

# name: (constructor options, function -> (x, y))
CASES = {
    "celeba_resnet18": (dict(input_shape=(16, 16, 3), attributes=("Smiling", "Young", "Bald"), widths=(4, 4, 4, 4),
                             blocks=1),
                        lambda: (_images(), {n: _ints(2).astype("float32") for n in ("smiling", "young", "bald")})),
    "cross_stitch_segnet": (dict(input_shape=(16, 16, 3), filters=(4, 8)),
                            lambda: (_images(), _dense_labels(("segmentation", "normals")))),
    "deepid2": (dict(input_shape=(16, 16, 3), identities=2, filters=(4, 4, 8, 8), features=8),
                lambda: (_images(), {"identification": _IDENTITIES, "verification": _IDENTITIES})),
    "mmoe_census": (dict(input_shape=(12,), expert_units=(8,), tower_units=4), _census),
    "mtan_segnet": (dict(input_shape=(16, 16, 3), filters=(4, 8)),
                    lambda: (_images(), _dense_labels(("segmentation", "depth", "normals")))),
    "ple_census": (dict(input_shape=(12,), expert_units=(8,), tower_units=4), _census),
    "rpn_detector": (dict(input_shape=(16, 16, 3), filters=(4, 8), channels=8),
                     lambda: (_images(), {"objectness": _ints(2, (B, 96, 1)).astype("float32"),
                                          "boxes": np.random.default_rng(4).normal(size=(B, 96, 4)).astype("float32")})),
    "tcdcn": (dict(input_shape=(16, 16, 3), filters=(4, 8), features=8, mean_shape=np.full(10, 0.5)),
              lambda: (_images(), {"landmarks": np.random.default_rng(5).random((B, 10)).astype("float32"),
                                   "gender": _ints(2), "smile": _ints(2), "glasses": _ints(2), "pose": _ints(5)})),
    "triplet_softmax": (dict(input_shape=(16, 16, 3), classes=2, filters=(4, 8), embedding=8),
                        lambda: (_images(), {"class": _IDENTITIES, "embedding": _IDENTITIES})),
}


# Their first training step alone traces for about a minute on two busy cores (dense
# metrics, MGDA on 40 tasks): the full check is in the slow tier, the build in the fast.
SLOW = ("celeba_resnet18", "cross_stitch_segnet", "mtan_segnet")


def check_zoo_model_builds(name):
    """Builds zoo model `name` small: compiled, one output per task of its labels."""
    options, data = CASES[name]
    model = zoo.get(name)(**options)
    assert isinstance(model, keras_mtl.MultiTaskModel) and model.compiled
    assert sorted(model.output_names) == sorted(data()[1])


def check_zoo_model(name, path, export=True):
    """Builds zoo model `name` small, trains one step, saves, reloads and (with
    `export`) exports it."""
    options, data = CASES[name]
    model = zoo.get(name)(**options)
    x, y = data()
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=B, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), history
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    predictions = model.predict(x, verbose=0)
    file = str(path / f"{name}.keras")
    model.save(file)
    again = keras.models.load_model(file)
    for task, value in again.predict(x, verbose=0).items():
        np.testing.assert_allclose(value, predictions[task], rtol=1e-5, atol=1e-5, err_msg=f"{name}: {task}")
    if not export:
        return
    exported = keras_mtl.export(model, str(path / f"{name}_export"))
    assert [t["name"] for t in keras_mtl.export_lib.read_metadata(exported)["tasks"]] == model.output_names
