"""Core: Task, build, variable partition, the train step, labels, logs."""

import numpy as np
import keras
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.weighting import Weighting


def _paths(variables):
    return sorted(v.path for v in variables)


def _sparse_nll(logits, labels):
    """Per-example sparse categorical cross-entropy of logits, in numpy."""
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(labels)), labels]


# ----------------------------------------------------------------------------- Task


@pytest.mark.parametrize("name", ["", "1abc", "a b", None, "x/y"])
def test_task_rejects_invalid_names(name):
    with pytest.raises(ValueError, match="Task name"):
        keras_mtl.Task(name, head=1, loss="mse")


@pytest.mark.parametrize("name", ["val", "val_a"])
def test_task_names_that_clash_with_validation_logs_are_rejected(name):
    with pytest.raises(ValueError, match=f"not be 'val' or start with 'val_'.*name='{name}'"):
        keras_mtl.Task(name, head=1, loss="mse")
    inputs = keras.Input((4,))
    outputs = {n: keras.layers.Dense(1, name=n)(inputs) for n in (name, "b")}
    with pytest.raises(ValueError, match=f"name='{name}'"):
        keras_mtl.MultiTaskModel.from_model(keras.Model(inputs, outputs))


@pytest.mark.parametrize("loss_weight", [float("inf"), float("nan"), -1.0, "2", None])
def test_task_rejects_a_loss_weight_that_is_not_a_finite_number_at_least_0(loss_weight,
                                                                           two_task_model):
    with pytest.raises((TypeError, ValueError), match=r"Task 'a': loss_weight must be .*Received: loss_weight="):
        keras_mtl.Task("a", head=1, loss="mse", loss_weight=loss_weight)
    with pytest.raises((TypeError, ValueError), match=r"Received: weights\[0\]="):
        two_task_model(b_units=2).compile(optimizer="adam", loss_weights=[loss_weight, 1.0])


def test_build_rejects_duplicate_and_empty_tasks(two_tasks):
    with pytest.raises(ValueError, match="Duplicate task name 'a'"):
        keras_mtl.build("hard_sharing", [keras_mtl.Task("a", head=1, loss="mse"),
                                         keras_mtl.Task("a", head=1, loss="mse")],
                        backbone="mlp", input_shape=(4,))
    with pytest.raises(ValueError, match="at least one task"):
        keras_mtl.build("hard_sharing", [], backbone="mlp", input_shape=(4,))
    with pytest.raises(ValueError, match="Unknown architecture"):
        keras_mtl.build("nope", two_tasks(b_units=2), backbone="mlp", input_shape=(8,))


# ----------------------------------------------------------------- variable partition


def test_partition_hard_sharing_with_heads_at_different_depths():
    tasks = [
        keras_mtl.Task("colour", tap="block1", loss="mse", head=[
            keras.layers.GlobalAveragePooling2D(name="colour_pool"),
            keras.layers.Dense(3, name="colour_dense")]),
        keras_mtl.Task("style", loss="mse", head=[
            keras.layers.GlobalAveragePooling2D(name="style_pool"),
            keras.layers.Dense(2, name="style_dense")]),
    ]
    model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(8, 8, 3))
    assert model.output_names == ["colour", "style"]
    assert _paths(model.shared_variables) == ["bn1/beta", "bn1/gamma", "conv1/kernel"]
    assert _paths(model.task_variables["colour"]) == ["colour_dense/bias", "colour_dense/kernel"]
    # Blocks 2 and 3 feed only the deep head, so they belong to "style".
    assert _paths(model.task_variables["style"]) == [
        "bn2/beta", "bn2/gamma", "bn3/beta", "bn3/gamma", "conv2/kernel", "conv3/kernel",
        "style_dense/bias", "style_dense/kernel"]
    out = model(np.zeros((2, 8, 8, 3), "float32"))
    assert out["colour"].shape == (2, 3) and out["style"].shape == (2, 2)


def test_partition_single_task_shares_nothing(two_tasks):
    model = keras_mtl.build("single_task", two_tasks(b_units=2), backbone="mlp", input_shape=(8,))
    assert model.shared_variables == []
    a, b = _paths(model.task_variables["a"]), _paths(model.task_variables["b"])
    assert "a_dense1/kernel" in a and "b_dense1/kernel" in b
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(model.trainable_variables)


def test_partition_of_user_functional_model_with_nested_submodel():
    # A split-at-layer model written by hand: two shared layers, the second inside a
    # nested functional model with two outputs that go to different tasks.
    inputs = keras.Input((6,))
    shared = keras.layers.Dense(5, name="shared")(inputs)
    inner_in = keras.Input((5,))
    inner_common = keras.layers.Dense(4, name="inner_common")(inner_in)
    inner_a = keras.layers.Dense(3, name="inner_a")(inner_common)
    inner_b = keras.layers.Dense(3, name="inner_b")(inner_common)
    inner = keras.Model(inner_in, [inner_a, inner_b], name="inner")
    ha, hb = inner(shared)
    out_a = keras.layers.Dense(1, name="task_a")(ha)
    out_b = keras.layers.Dense(1, name="task_b")(keras.layers.Dense(2, name="b_only")(hb))
    user = keras.Model(inputs, [out_a, out_b])
    model = keras_mtl.MultiTaskModel.from_model(user)
    assert model.task_names == ["task_a", "task_b"]
    assert _paths(model.shared_variables) == [
        "inner_common/bias", "inner_common/kernel", "shared/bias", "shared/kernel"]
    assert _paths(model.task_variables["task_a"]) == [
        "inner_a/bias", "inner_a/kernel", "task_a/bias", "task_a/kernel"]
    assert _paths(model.task_variables["task_b"]) == [
        "b_only/bias", "b_only/kernel", "inner_b/bias", "inner_b/kernel",
        "task_b/bias", "task_b/kernel"]


# ---------------------------------------------------------------------- train step


def test_train_step_matches_hand_written_tape_with_two_optimizers(two_task_model, two_task_data):
    weights = (0.3, 1.7)
    model = two_task_model(b_units=2, loss_weights=weights)
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  task_optimizer=keras.optimizers.Adam(0.01))
    x, y = two_task_data(b_units=2)

    # Independent partition: by layer name, not by the graph analysis under test.
    shared = [v for v in reference.trainable_variables if v.path.startswith("dense")]
    task = [v for v in reference.trainable_variables if not v.path.startswith("dense")]
    assert len(shared) == 4 and len(task) == 4
    shared_opt = keras.optimizers.SGD(0.05, momentum=0.9)
    task_opt = keras.optimizers.Adam(0.01)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    mse = keras.losses.MeanSquaredError()
    for step in range(3):
        xb, yb = x[step * 8:(step + 1) * 8], {k: v[step * 8:(step + 1) * 8] for k, v in y.items()}
        model.train_on_batch(xb, yb)
        with tf.GradientTape() as tape:
            out = reference(xb, training=True)
            loss = weights[0] * ce(yb["a"], out["a"]) + weights[1] * mse(yb["b"], out["b"])
        grads = tape.gradient(loss, shared + task)
        shared_opt.apply(grads[:4], shared)
        task_opt.apply(grads[4:], task)
    for v, r in zip(model.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(v.numpy(), r.numpy(), atol=1e-6, err_msg=v.path)


def test_history_has_per_task_losses_weights_and_metrics(two_task_model, two_task_data):
    model = two_task_model(b_units=2, loss_weights=(0.3, 1.7))
    model.compile(optimizer="adam")
    x, y = two_task_data(b_units=2)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0).history
    for prefix in ("", "val_"):
        for key in ("loss", "a_loss", "b_loss", "a_weight", "b_weight", "a_accuracy", "b_mae"):
            assert len(history[prefix + key]) == 2, prefix + key
    np.testing.assert_allclose(history["a_weight"], [0.3, 0.3], rtol=1e-6)
    np.testing.assert_allclose(history["b_weight"], [1.7, 1.7], rtol=1e-6)
    # The total is the weighted sum of the task losses.
    for prefix in ("", "val_"):
        total = 0.3 * np.array(history[prefix + "a_loss"]) + 1.7 * np.array(history[prefix + "b_loss"])
        np.testing.assert_allclose(history[prefix + "loss"], total, rtol=1e-5)
    # Validation task losses are the plain Keras losses of the final model.
    out = model.predict(x, verbose=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y["a"], out["a"])
    np.testing.assert_allclose(history["val_a_loss"][-1], float(ce), rtol=1e-5)


def test_loss_weights_argument_and_weighting_errors(two_task_model):
    model = two_task_model(b_units=2)
    model.compile(optimizer="adam", loss_weights={"b": 2.0})
    assert model.weighting.fixed_weights == [1.0, 2.0]
    with pytest.raises(ValueError, match="unknown tasks"):
        two_task_model(b_units=2).compile(optimizer="adam", loss_weights={"zzz": 2.0})
    with pytest.raises(ValueError, match="Unknown weighting"):
        two_task_model(b_units=2).compile(optimizer="adam", weighting="nope")
    with pytest.raises(ValueError, match="no loss"):
        keras_mtl.build("hard_sharing", [keras_mtl.Task("a", head=1)], backbone="mlp",
                        input_shape=(8,)).compile(optimizer="adam")


# -------------------------------------------------------------------------- labels


def test_one_label_tensor_is_sliced_per_task(two_tasks, two_task_data):
    tasks = two_tasks(b_units=2)
    tasks[0].label_slice, tasks[1].label_slice = (0, 1), (1, 3)
    sliced = keras_mtl.build("hard_sharing", tasks, backbone="mlp", input_shape=(8,))
    by_dict = keras.models.clone_model(sliced)
    by_dict.set_weights(sliced.get_weights())
    by_dict = keras_mtl.MultiTaskModel.from_model(by_dict, tasks=two_tasks(b_units=2))
    x, y = two_task_data(b_units=2)
    blob = np.concatenate([y["a"][:, None].astype("float32"), y["b"]], axis=1)
    for model in (sliced, by_dict):
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    sliced.fit(x, blob, batch_size=8, epochs=1, shuffle=False, verbose=0)
    by_dict.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for v, r in zip(sliced.trainable_variables, by_dict.trainable_variables):
        np.testing.assert_allclose(v.numpy(), r.numpy(), atol=1e-6)


def test_bad_labels_give_errors_that_name_the_task(two_task_model, two_task_data):
    model = two_task_model(b_units=2)
    model.compile(optimizer="adam")
    x, y = two_task_data(b_units=2)
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['c'\]"):
        model.fit(x, {**y, "c": y["b"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"No labels for task\(s\) \['b'\]"):
        model.fit(x, {"a": y["a"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"declare no label_slice"):
        model.fit(x, y["b"], epochs=1, verbose=0)


def _one_hot(labels):
    return np.eye(3, dtype="float32")[labels]


@pytest.mark.parametrize("as_dataset", [False, True], ids=["arrays", "dataset"])
@pytest.mark.parametrize("task,labels,loss,dtype,expected", [
    ("a", _one_hot, None, "float32", r"output shape \(None, 3\)"),
    ("a", None, keras.losses.CategoricalCrossentropy(from_logits=True), "int64",
     r"output shape \(None, 3\)"),
    ("b", lambda b: b[:, 0], None, "float32", r"output shape \(None, 2\)"),
    ("a", lambda a: a.astype(str), None, "str", r"output shape \(None, 3\)"),
], ids=["one-hot for sparse loss", "indices for categorical loss", "(B,) for (B,2) output",
        "strings"])
def test_label_mistakes_name_task_labels_and_output(as_dataset, task, labels, loss, dtype, expected,
                                                    two_task_model, two_task_data):
    model = two_task_model(b_units=2)
    model.compile(optimizer="adam", loss=loss and {"a": loss, "b": "mse"})
    x, y = two_task_data(b_units=2)
    y = {**y, task: labels(y[task]) if labels else y[task]}
    shape = rf"\((32|None),{'' if y[task].ndim == 1 else ' %d' % y[task].shape[1]}\)"
    data = (tf.data.Dataset.from_tensor_slices((x, y)).batch(8),) if as_dataset else (x, y)
    # The message names the task, the labels' shape and dtype and the output shape.
    with pytest.raises(ValueError, match=rf"(?s)^(?=Task '{task}')(?=.*label shape {shape})"
                                         rf"(?=.*{expected})(?=.*dtype={dtype})"):
        model.fit(*data, epochs=1, verbose=0)


def test_label_mistakes_in_validation_data_name_the_task(two_task_model, two_task_data):
    model = two_task_model(b_units=2)
    model.compile(optimizer="adam")
    x, y = two_task_data(b_units=2)
    strings = {**y, "a": y["a"].astype(str)}
    with pytest.raises(ValueError, match=r"(?s)^Task 'a'.*dtype=str"):
        model.fit(x, y, validation_data=(x, strings), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"(?s)^Task 'a'.*dtype=str"):
        model.fit(x, y, validation_data=(x, strings, None), epochs=1, verbose=0)


def test_label_shapes_that_fit_train_alike(two_task_model, two_task_data):
    # (B,) and (B,1) class indices for a sparse loss, (B,) and (B,1) labels for a
    # (B,1) output, with a mask.
    x, y = two_task_data(16, b_units=2)
    mask = {"a": np.ones(16, "float32"), "b": (np.arange(16) % 2).astype("float32")}
    histories = []
    for labels in ({"a": y["a"], "b": y["b"][:, 0]}, {"a": y["a"][:, None], "b": y["b"][:, :1]}):
        keras.utils.set_random_seed(0)
        model = two_task_model(metrics=False)
        model.compile(optimizer="adam")
        histories.append(model.fit(x, labels, sample_weight=mask, batch_size=8, epochs=2,
                                   shuffle=False, verbose=0).history)
    assert np.all(np.isfinite(histories[0]["loss"]))
    for key in ("a_loss", "b_loss"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-6)


def test_sample_weight_masks_missing_labels(two_task_model, two_task_data):
    model = two_task_model(b_units=2)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = two_task_data(16, b_units=2)
    mask_a = (np.arange(16) % 3 == 0).astype("float32")
    logs = model.test_on_batch(x, y, sample_weight={"a": mask_a, "b": np.ones(16, "float32")},
                               return_dict=True)
    nll = _sparse_nll(model.predict(x, verbose=0)["a"], y["a"])
    np.testing.assert_allclose(logs["a_loss"], nll[mask_a > 0].mean(), rtol=1e-5)
    # No label at all for a task in a batch: it contributes 0, not NaN.
    logs = model.train_on_batch(x, y, sample_weight={"a": np.zeros(16, "float32"),
                                                     "b": np.ones(16, "float32")},
                                return_dict=True)
    assert logs["a_loss"] == 0.0 and np.isfinite(logs["loss"])


@pytest.mark.parametrize("batch_size", [8, 32])
def test_masked_task_losses_are_epoch_means_over_labelled_entries(batch_size, two_task_model,
                                                                  two_task_data):
    model = two_task_model(b_units=2)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = two_task_data(32, b_units=2)
    # Labels of b mostly in the first batch of 8, so that batch-size and label-count
    # weighting of the batches' means differ.
    mask = {"a": (np.arange(32) % 2 == 0).astype("float32"),
            "b": ((np.arange(32) < 7) | (np.arange(32) % 8 == 0)).astype("float32")}
    data = tf.data.Dataset.from_tensor_slices((x, y, mask)).batch(batch_size)
    history = model.fit(data, epochs=1, validation_data=data, verbose=0).history
    out = model.predict(x, verbose=0)
    nll = _sparse_nll(out["a"], y["a"])
    squared = ((out["b"] - y["b"]) ** 2).mean(axis=1)
    expected = {"a_loss": nll[mask["a"] > 0].mean(), "b_loss": squared[mask["b"] > 0].mean()}
    for prefix in ("", "val_"):
        for key, value in expected.items():
            np.testing.assert_allclose(history[prefix + key], [value], rtol=1e-5, err_msg=prefix + key)


# ----------------------------------------------------------- optimizers and hooks


class _ScaleLayer(keras.layers.Layer):
    optimizer_group = "scale"

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale


def _model_with_scale_group():
    inputs = keras.Input((4,))
    h = _ScaleLayer(name="scaler")(keras.layers.Dense(3, name="trunk")(inputs))
    return keras_mtl.MultiTaskModel(
        inputs=inputs,
        outputs={"a": keras.layers.Dense(1, name="a")(h), "b": keras.layers.Dense(1, name="b")(h)},
        tasks=[keras_mtl.Task("a", loss="mse"), keras_mtl.Task("b", loss="mse")])


def test_learning_rate_multiplier_group_gets_its_own_optimizer():
    model = _model_with_scale_group()
    model.compile(optimizer=keras.optimizers.SGD(0.01), learning_rate_multipliers={"scale": 100.0})
    x, ya, yb = (np.random.default_rng(1).normal(size=(8, n)).astype("float32") for n in (4, 1, 1))
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean((ya - out["a"]) ** 2) + tf.reduce_mean((yb - out["b"]) ** 2)
    grads = dict(zip((v.path for v in model.trainable_variables),
                     tape.gradient(loss, model.trainable_variables)))
    model.train_on_batch(x, {"a": ya, "b": yb})
    for v in model.trainable_variables:
        lr = 1.0 if v.path == "scaler/scale" else 0.01
        np.testing.assert_allclose(v.numpy(), before[v.path] - lr * grads[v.path].numpy(),
                                   atol=1e-6, err_msg=v.path)


def test_learning_rate_multipliers_errors_name_the_argument():
    model = _model_with_scale_group()
    with pytest.raises(ValueError, match=r"optimizer group\(s\) \['sclae'\] that no layer .* \['scale'\]"):
        model.compile(optimizer="sgd", learning_rate_multipliers={"sclae": 100.0})
    with pytest.raises(TypeError, match=r"Received: learning_rate_multipliers=\[100.0\]"):
        model.compile(optimizer="sgd", learning_rate_multipliers=[100.0])
    with pytest.raises(TypeError, match=r"Received: learning_rate_multipliers\['scale'\]='fast'"):
        model.compile(optimizer="sgd", learning_rate_multipliers={"scale": "fast"})
    with pytest.raises(ValueError, match=r"Received: learning_rate_multipliers\['scale'\]=0"):
        model.compile(optimizer="sgd", learning_rate_multipliers={"scale": 0})


def test_one_weighting_instance_belongs_to_one_model(two_task_model):
    weighting = keras_mtl.weighting.DWA()
    first = two_task_model(b_units=2)
    first.compile(optimizer="adam", weighting=weighting)
    first.compile(optimizer="sgd", weighting=weighting)
    with pytest.raises(ValueError, match="already compiled into model 'hard_sharing'"):
        two_task_model(b_units=2).compile(optimizer="adam", weighting=weighting)
    # Free again once the first model has another one.
    first.compile(optimizer="adam", weighting="equal")
    second = two_task_model(b_units=2)
    second.compile(optimizer="adam", weighting=weighting)
    assert second.weighting is weighting


class _SumOfGradients(Weighting):
    def __init__(self, gradient_mode, **kwargs):
        super().__init__(**kwargs)
        self.gradient_mode = gradient_mode

    def combine_gradients(self, grads, losses, present=None):
        return keras.ops.sum(grads, axis=0), keras.ops.ones_like(losses)

    def task_weights(self, losses, training=False):
        return keras.ops.ones_like(losses)


@pytest.mark.parametrize("mode", ["shared_parameters", "representation"])
def test_gradient_method_hook_with_summed_gradients_equals_equal_weighting(mode, two_task_model,
                                                                           two_task_data):
    x, y = two_task_data(b_units=2)
    models = []
    for weighting in ("equal", _SumOfGradients(mode)):
        keras.utils.set_random_seed(3)
        model = two_task_model(b_units=2)
        model.compile(optimizer=keras.optimizers.SGD(0.1), weighting=weighting)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        models.append(model)
    for v, r in zip(models[0].trainable_variables, models[1].trainable_variables):
        np.testing.assert_allclose(v.numpy(), r.numpy(), atol=1e-6, err_msg=v.path)


def test_gradient_method_needs_shared_variables(two_tasks):
    model = keras_mtl.build("single_task", two_tasks(b_units=2), backbone="mlp", input_shape=(8,))
    with pytest.raises(ValueError, match="shares no variable between tasks"):
        model.compile(optimizer="adam", weighting=_SumOfGradients("shared_parameters"))


# ----------------------------------------------------------------------------- float64


@pytest.mark.slow
@pytest.mark.parametrize("weighting", [
    "equal", "dwa", "uncertainty", "gradnorm", "famo", "gls",
    lambda: keras_mtl.weighting.MGDA(gradient_mode="representation"), "cagrad", "imtl",
    "nash_mtl", "aligned_mtl", lambda: keras_mtl.weighting.PCGrad(seed=1)])
def test_float64_models_train_in_float64_like_float32_ones(weighting, two_task_model,
                                                           two_task_data):
    """Under `keras.config.set_floatx("float64")` every variable and logged value is
    float64, and a step is the float32 step to float32 accuracy."""
    x, y = two_task_data(b_units=2)
    make = weighting if callable(weighting) else lambda: weighting
    states, initial = {}, None
    for floatx in ("float32", "float64"):
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(floatx)
        try:
            model = two_task_model(b_units=2)
            initial = initial or model.get_weights()
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.1), weighting=make())
            logs = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        finally:
            keras.config.set_floatx("float32")
            keras.config.set_dtype_policy("float32")
        variables = model.variables + model.weighting.variables
        assert {v.dtype for v in variables if "float" in v.dtype} == {floatx}
        assert all(np.isfinite(v) for values in logs.values() for v in values)
        states[floatx] = [np.asarray(v.numpy(), "float64") for v in variables]
    for a, b in zip(states["float32"], states["float64"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
