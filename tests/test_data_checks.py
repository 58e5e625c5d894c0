"""The data given to `fit` and `evaluate`: class labels outside the output's classes,
sample weights that are not masks, non-integer or mis-shaped identity labels, partial
sample-weight dicts and string inputs each fail with an error naming the task or the
input, whether the data come as arrays, a `tf.data` pipeline or a generator; the
logged weight of a task absent from a batch is 0. Backend-agnostic: the JAX tier runs
the same tests (`tests/jax/test_data_checks_jax.py`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl import weighting as weighting_lib
from keras_mtl.layers import EmbeddingHead
from keras_mtl.losses import TripletLoss
from weighting_utils import TASKS, tiny_data, tiny_model


def _compiled(**compile_args):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-2), **compile_args)
    return model


def _as(kind, x, y, sample_weight=None, batch=16):
    """`(x, y, sample_weight)` as `fit` takes them: arrays, a `tf.data` pipeline or a
    generator of batches."""
    data = (x, y) if sample_weight is None else (x, y, sample_weight)
    if kind == "arrays":
        return (x, y, sample_weight)
    if kind == "dataset":
        return (tf.data.Dataset.from_tensor_slices(data).batch(batch), None, None)

    def batches():
        for start in range(0, len(x), batch):
            yield keras.tree.map_structure(lambda a: a[start:start + batch], data)
    return (batches(), None, None)


def _fit(model, kind, x, y, sample_weight=None, **kwargs):
    x, y, sample_weight = _as(kind, x, y, sample_weight)
    extra = {} if sample_weight is None else {"sample_weight": sample_weight}
    return model.fit(x, y, epochs=1, verbose=0, **extra, **kwargs)


DATA_KINDS = ["arrays", "dataset", "generator"]


# ------------------------------------------------------------------ class labels

@pytest.mark.parametrize("kind", DATA_KINDS)
@pytest.mark.parametrize("bad", [5, -1, 3])
def test_class_label_outside_the_classes_is_rejected_naming_task_value_and_count(kind, bad):
    x, y = tiny_data()
    y["cls"][7] = bad
    model = _compiled()
    with pytest.raises(ValueError, match=rf"Task 'cls'.*{bad}.*3 classes"):
        _fit(model, kind, x, y)


def test_class_label_outside_the_classes_is_rejected_by_evaluate_and_in_validation_data():
    x, y = tiny_data()
    bad = {k: v.copy() for k, v in y.items()}
    bad["cls"][0] = 4
    model = _compiled()
    with pytest.raises(ValueError, match=r"Task 'cls'.*4.*3 classes"):
        model.evaluate(x, bad, verbose=0)
    with pytest.raises(ValueError, match=r"Task 'cls'.*4.*3 classes"):
        model.fit(x, y, validation_data=(x, bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Task 'cls'.*4.*3 classes"):
        model.evaluate(tf.data.Dataset.from_tensor_slices((x, bad)).batch(16), verbose=0)


def test_ignored_class_and_every_valid_class_pass():
    x, y = tiny_data()
    y["cls"][:3] = [0, 1, 2]
    y["cls"][3] = -1
    model = tiny_model()
    model.compile(optimizer="sgd", loss={
        "cls": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1), "reg": "mse",
        "bin": "binary_crossentropy"})
    for kind in DATA_KINDS:
        _fit(model, kind, x, y)


def test_fractional_class_label_is_rejected():
    x, y = tiny_data()
    y["cls"] = y["cls"].astype("float32")
    y["cls"][2] = 1.5
    with pytest.raises(ValueError, match=r"Task 'cls'.*1\.5"):
        _fit(_compiled(), "arrays", x, y)


# --------------------------------------------------------------- sample weights

@pytest.mark.parametrize("kind", DATA_KINDS)
@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_sample_weight_that_is_not_a_mask_is_rejected_naming_the_task(kind, bad):
    x, y = tiny_data()
    weights = {t: np.ones(len(x), "float32") for t in TASKS}
    weights["reg"][5] = bad
    with pytest.raises(ValueError, match=r"Task 'reg'.*sample weight"):
        _fit(_compiled(), kind, x, y, weights)


def test_sample_weight_dict_naming_some_tasks_weighs_the_others_one():
    x, y = tiny_data()
    mask = (np.arange(len(x)) % 2).astype("float32")
    keras.utils.set_random_seed(1)
    partial = _compiled()
    partial_logs = _fit(partial, "arrays", x, y, {"reg": mask}, batch_size=16,
                        shuffle=False).history
    keras.utils.set_random_seed(1)
    full = _compiled()
    full_logs = _fit(full, "arrays", x, y, {"cls": np.ones(len(x), "float32"), "reg": mask,
                                            "bin": np.ones(len(x), "float32")},
                     batch_size=16, shuffle=False).history
    for key in ("loss", "cls_loss", "reg_loss", "bin_loss"):
        np.testing.assert_allclose(partial_logs[key], full_logs[key], rtol=1e-6)
    np.testing.assert_allclose(partial.evaluate(x, y, sample_weight={"reg": mask}, verbose=0),
                               full.evaluate(x, y, sample_weight={"reg": mask}, verbose=0),
                               rtol=1e-6)


@pytest.mark.parametrize("kind", ["arrays", "dataset"])
def test_sample_weight_of_the_wrong_shape_names_the_task(kind):
    x, y = tiny_data()
    weights = {t: np.ones(len(x), "float32") for t in TASKS}
    weights["cls"] = np.ones((len(x), 2), "float32")
    with pytest.raises(ValueError, match=r"Task 'cls'.*sample weight.*\(None, 2\)|"
                                         r"Task 'cls'.*sample weight.*\(64, 2\)"):
        _fit(_compiled(), kind, x, y, weights)


# ------------------------------------------------------------------ inputs

@pytest.mark.parametrize("kind", ["arrays", "dataset"])
def test_string_inputs_say_what_is_wrong(kind):
    x, y = tiny_data()
    strings = x.astype(str)
    with pytest.raises(ValueError, match=r"[Ii]nput.*string|str.*numeric"):
        _fit(_compiled(), kind, strings, y)


def test_a_model_whose_input_takes_strings_trains_on_strings():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("string tensors are TensorFlow's")
    inputs = keras.Input((1,), dtype="string", name="words")
    ids = keras.layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")(inputs)
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(ids))
    model = keras_mtl.MultiTaskModel.from_model(keras.Model(
        inputs, {"cls": keras.layers.Dense(2, name="cls")(hidden),
                 "reg": keras.layers.Dense(1, name="reg")(hidden)}),
        tasks=[keras_mtl.Task("cls", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
               keras_mtl.Task("reg", loss="mse")])
    model.compile(optimizer="sgd")
    words = np.array([["a"], ["b"], ["c"], ["b"]] * 4)
    y = {"cls": np.arange(16) % 2, "reg": np.ones((16, 1), "float32")}
    data = tf.data.Dataset.from_tensor_slices((words, y)).batch(4)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------------------- identity labels

def _verification_model():
    tasks = [
        keras_mtl.Task("identity", head=3, loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True)),
        keras_mtl.Task("verification", head=EmbeddingHead(4), loss=TripletLoss()),
    ]
    model = keras_mtl.build("hard_sharing", tasks, input_shape=(8,),
                            backbone=lambda s: keras_mtl.backbones.mlp(s, units=(8,)))
    model.compile(optimizer="sgd")
    return model


def _identity_data(n=32):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    return rng.normal(size=(n, 8)).astype("float32"), labels


@pytest.mark.parametrize("kind", DATA_KINDS)
def test_fractional_identity_labels_are_rejected_naming_the_task(kind):
    x, labels = _identity_data()
    identities = labels.astype("float32")
    identities[:2] = [1.2, 1.8]
    with pytest.raises(ValueError, match=r"Task 'verification'.*1\.2.*integer"):
        _fit(_verification_model(), kind, x, {"identity": labels, "verification": identities})


def test_integer_valued_float_identity_labels_train():
    x, labels = _identity_data()
    _fit(_verification_model(), "dataset", x,
         {"identity": labels, "verification": labels.astype("float32")})


@pytest.mark.parametrize("kind", ["arrays", "dataset"])
def test_identity_labels_of_two_columns_name_the_task(kind):
    x, labels = _identity_data()
    with pytest.raises(ValueError, match=r"Task 'verification'.*identit"):
        _fit(_verification_model(), kind, x,
             {"identity": labels, "verification": np.stack([labels, labels], axis=1)})


# --------------------------------------------------- weights of absent tasks

def _absent_batches(n=32):
    """Two batches: the first without labels for "reg" (mask 0), the second with all."""
    x, y = tiny_data(n)
    mask = np.ones(n, "float32")
    mask[: n // 2] = 0.0
    weights = {t: np.ones(n, "float32") for t in TASKS}
    weights["reg"] = mask
    return x, y, weights


@pytest.mark.parametrize("method", [
    "equal", "dwa", "uncertainty", "gradnorm",
    weighting_lib.Fixed([1.0, 2.0, 1.0]),
    weighting_lib.DTP(kpis={"cls": "accuracy"}), "pcgrad"])
def test_logged_weight_of_a_task_absent_from_the_batch_is_zero(method):
    x, y, weights = _absent_batches()
    model = _compiled(weighting=method)
    first = model.train_on_batch(x[:16], {k: v[:16] for k, v in y.items()},
                                 sample_weight={k: v[:16] for k, v in weights.items()},
                                 return_dict=True)
    assert first["reg_weight"] == 0.0, first
    assert first["cls_weight"] > 0.0
    logs = model.evaluate(x[:16], {k: v[:16] for k, v in y.items()},
                          sample_weight={k: v[:16] for k, v in weights.items()},
                          verbose=0, return_dict=True)
    assert logs["reg_weight"] == 0.0, logs


def test_a_sample_weight_dict_naming_an_unknown_task_is_an_error():
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"unknown task.*'clss'"):
        _compiled().fit(x, y, sample_weight={"clss": np.zeros(len(x), "float32")}, epochs=1, verbose=0)


def test_a_sample_weight_broadcast_over_the_entries_of_a_dense_output_fits():
    from keras_mtl import _data_checks

    pixels = keras.KerasTensor((None, 8, 8, 3))
    for shape in [(4,), (4, 1), (4, 1, 1), (4, 8, 8), (4, 8, 1), (4, 8, 8, 1)]:
        _data_checks.check_weight_shape("seg", np.ones(shape, "float32"), pixels)
    for shape in [(4, 2), (4, 8, 2), (4, 8, 8, 3, 1), (1, 8, 8, 3)]:
        with pytest.raises(ValueError, match="Task 'seg': sample weight shape"):
            _data_checks.check_weight_shape("seg", np.ones(shape, "float32"), pixels)
