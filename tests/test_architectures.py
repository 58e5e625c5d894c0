"""One suite over every architecture: build, fit, `.keras` and SavedModel round trips,
and the shared/task variable partition checked against gradients."""

import numpy as np
import keras
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.architectures import cross_stitch, dselect_k, mmoe, mtan, ple, soft_sharing, split  # noqa: F401  (register)
from keras_mtl.backbones import conv, mlp
from keras_mtl.layers import CrossStitch, DSelectKGate, ExpertGate, TaskAttention


def _tiny_conv(shape):
    return conv(shape, filters=(4, 8))


def _tiny_mlp(shape):
    return mlp(shape, units=(8, 6))


def _image_tasks(n=2):
    names = ["colour", "size", "count"][:n]
    return [
        keras_mtl.Task(name, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"],
                       head=[keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name=f"{name}_logits")])
        if i % 2 == 0 else
        keras_mtl.Task(name, loss="mse", head=[keras.layers.Flatten(), keras.layers.Dense(1, name=f"{name}_value")])
        for i, name in enumerate(names)
    ]


def _tabular_tasks():
    return [keras_mtl.Task("income", head=2, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            keras_mtl.Task("age", head=1, loss="mse")]


def _dense_tasks():
    return [keras_mtl.Task("segmentation", head=keras.layers.Conv2D(3, 1),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            keras_mtl.Task("depth", head=keras.layers.Conv2D(1, 1), loss="mae")]


def _data(kind, tasks, n=16):
    rng = np.random.default_rng(1)
    if kind == "tabular":
        x = rng.normal(size=(n, 8)).astype("float32")
    else:
        x = rng.uniform(size=(n, 16, 16, 3)).astype("float32")
    y = {}
    for task in tasks:
        if kind == "dense":
            y[task.name] = (rng.integers(0, 3, (n, 16, 16)) if task.name == "segmentation"
                            else rng.uniform(size=(n, 16, 16, 1)).astype("float32"))
        elif isinstance(task.loss, keras.losses.SparseCategoricalCrossentropy):
            y[task.name] = rng.integers(0, 2 if kind == "tabular" else 3, n)
        else:
            y[task.name] = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def _names(variables):
    return {v.path for v in variables}


def _of_layers(model, kind):
    return _names(v for layer in model.layers if isinstance(layer, kind) for v in layer.trainable_variables)


def _prefixed(model, prefix):
    return _names(v for layer in model.layers if layer.name.startswith(prefix) for v in layer.trainable_variables)


def _expect_cross_stitch(model):
    units = _of_layers(model, CrossStitch)
    assert len(units) == 2 and units <= _names(model.shared_variables)
    assert {model.get_layer(f"cross_stitch_{b}").alpha.shape for b in ("block1", "block2")} == {(3, 3, 8), (3, 3, 4)}


def _expect_split(model):
    assert _names(model.shared_variables) == _names(model.get_layer("conv1").trainable_variables
                                                    + model.get_layer("bn1").trainable_variables)
    assert _prefixed(model, "colour_conv2") <= _names(model.task_variables["colour"])


def _expect_soft_sharing(model):
    assert model.shared_variables == []
    assert _prefixed(model, "income_") <= _names(model.task_variables["income"])


def _expect_mmoe(model):
    assert _prefixed(model, "expert") == _names(model.shared_variables)
    assert _names(model.get_layer("age_gate").trainable_variables) <= _names(model.task_variables["age"])


def _expect_dselect_k(model):
    _expect_mmoe(model)
    gates = [layer for layer in model.layers if isinstance(layer, DSelectKGate)]
    assert sorted(g.name for g in gates) == ["age_gate", "income_gate"] and all(g.num_nonzeros == 2 for g in gates)


def _expect_cgc(model):
    assert _prefixed(model, "shared_expert") == _names(model.shared_variables)
    assert _prefixed(model, "income_expert") | _prefixed(model, "level1_income_gate") <= _names(
        model.task_variables["income"])


def _expect_ple(model):
    shared = _names(model.shared_variables)
    assert _prefixed(model, "colour_expert1_conv1") <= shared and _prefixed(model, "level1_shared_gate") <= shared
    assert _prefixed(model, "colour_expert1_conv2") | _prefixed(model, "level2_colour_gate") <= _names(
        model.task_variables["colour"])


def _expect_mtan(model):
    attention = {t: _names(v for layer in model.layers if isinstance(layer, TaskAttention)
                           and layer.name.startswith(f"{t}_") for v in layer.trainable_variables)
                 for t in model.task_names}
    for task, variables in attention.items():
        assert variables and variables <= _names(model.task_variables[task])
    assert _prefixed(model, "encoder1_attention_block") <= _names(model.shared_variables)


CASES = {
    "hard_sharing": dict(kind="image", tasks=_image_tasks, backbone=_tiny_conv),
    "single_task": dict(kind="image", tasks=_image_tasks, backbone=_tiny_conv,
                        expect=lambda m: m.shared_variables == [] or pytest.fail("shared variables")),
    "split": dict(kind="image", tasks=_image_tasks, backbone=_tiny_conv, options=dict(split_at="block1"),
                  expect=_expect_split),
    "cross_stitch": dict(kind="image", tasks=lambda: _image_tasks(3), backbone=_tiny_conv,
                         options=dict(per_channel=True), expect=_expect_cross_stitch,
                         compile=dict(learning_rate_multipliers={"cross_stitch": 100.0})),
    "soft_sharing": dict(kind="tabular", tasks=_tabular_tasks, backbone=_tiny_mlp, expect=_expect_soft_sharing),
    "mmoe": dict(kind="tabular", tasks=_tabular_tasks, backbone=_tiny_mlp, options=dict(num_experts=3),
                 expect=_expect_mmoe),
    "dselect_k": dict(kind="tabular", tasks=_tabular_tasks, backbone=_tiny_mlp,
                      options=dict(num_experts=3, num_nonzeros=2), expect=_expect_dselect_k),
    "cgc": dict(kind="tabular", tasks=_tabular_tasks, backbone=_tiny_mlp, options=dict(num_shared_experts=2),
                expect=_expect_cgc),
    "ple": dict(kind="image", tasks=_image_tasks, backbone=_tiny_conv, expect=_expect_ple),
    "mtan": dict(kind="dense", tasks=_dense_tasks, backbone="conv", options=dict(filters=(4, 8)),
                 expect=_expect_mtan),
    "mtan_on_backbone": dict(architecture="mtan", kind="image", tasks=_image_tasks, backbone=_tiny_conv,
                             options=dict(stages=[("conv1", "relu1"), "block2"]), expect=_expect_mtan),
}


def _gradient_partition(model, x):
    """Which outputs' gradients reach each variable: shared when more than one."""
    rng = np.random.default_rng(2)
    reached = {id(v): set() for v in model.trainable_variables}
    for name in model.task_names:
        with tf.GradientTape() as tape:
            out = model(x, training=False)[name]
            probe = tf.constant(rng.normal(size=out.shape), dtype=out.dtype)
            value = tf.reduce_sum(out * probe)
        grads = tape.gradient(value, model.trainable_variables)
        for v, g in zip(model.trainable_variables, grads):
            if g is not None and np.any(np.asarray(g) != 0):
                reached[id(v)].add(name)
    shared = [v for v in model.trainable_variables if len(reached[id(v)]) > 1]
    by_task = {n: [v for v in model.trainable_variables if reached[id(v)] == {n}] for n in model.task_names}
    return shared, by_task


@pytest.mark.parametrize("case", sorted(CASES))
def test_architecture(case, tmp_path):
    spec = CASES[case]
    tasks = spec["tasks"]()
    x, y = _data(spec["kind"], tasks)
    model = keras_mtl.build(spec.get("architecture", case), tasks, backbone=spec["backbone"],
                            input_shape=x.shape[1:], **spec.get("options", {}))
    assert set(model.output_names) == {t.name for t in tasks}

    shared, by_task = _gradient_partition(model, x[:4])
    assert _names(model.shared_variables) == _names(shared)
    for name in model.task_names:
        assert _names(model.task_variables[name]) == _names(by_task[name]), name
    assert sum(len(v) for v in by_task.values()) + len(shared) == len(model.trainable_variables)
    spec.get("expect", lambda m: None)(model)

    model.compile(optimizer=keras.optimizers.Adam(1e-3), **spec.get("compile", {}))
    before = [v.numpy() for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(history.history[f"{t.name}_loss"][-1]) for t in tasks)
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))

    expected = {k: v.numpy() for k, v in model(x, training=False).items()}
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    got = loaded(x, training=False)
    for name in model.task_names:
        np.testing.assert_allclose(got[name].numpy(), expected[name], rtol=1e-5, atol=1e-6)
    assert _names(loaded.shared_variables) == _names(model.shared_variables)

    keras_mtl.export(model, str(tmp_path / "saved"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = reloaded.serve(tf.constant(x))
    for name in model.task_names:
        np.testing.assert_allclose(served[name].numpy(), expected[name], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------ per-architecture checks


def _tabular(n=16):
    tasks = _tabular_tasks()
    x, y = _data("tabular", tasks, n)
    return tasks, x, y


def test_split_extremes_match_single_task_and_hard_sharing():
    nothing = keras_mtl.build("split", _image_tasks(), backbone=_tiny_conv, input_shape=(16, 16, 3), split_at=0)
    assert nothing.shared_variables == []
    everything = keras_mtl.build("split", _image_tasks(), backbone=_tiny_conv, input_shape=(16, 16, 3),
                                 split_at="block2")
    hard = keras_mtl.build("hard_sharing", _image_tasks(), backbone=_tiny_conv, input_shape=(16, 16, 3))
    assert _names(everything.shared_variables) == _names(hard.shared_variables)
    assert split.split_points(_tiny_conv, (16, 16, 3)) == [0, "block1", "block2"]
    # A split inside a network with skips: the task copies read the shared part's
    # pre-pooling features for their unpooling.
    small_segnet = lambda shape: mtan.segnet(shape, filters=(4, 8))
    assert split.split_points(small_segnet, (16, 16, 3))[:3] == [0, "encoder1_block1", "encoder1_pool"]
    skipping = keras_mtl.build("split", _dense_tasks(), backbone=small_segnet, input_shape=(16, 16, 3),
                               split_at="encoder1_pool")
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    shared, by_task = _gradient_partition(skipping, x)
    assert _names(skipping.shared_variables) == _names(shared) == _prefixed(skipping, "encoder1_")
    assert _names(skipping.task_variables["depth"]) == _names(by_task["depth"])
    with pytest.raises(ValueError, match="split_at='block9'"):
        keras_mtl.build("split", _image_tasks(), backbone=_tiny_conv, input_shape=(16, 16, 3), split_at="block9")


def test_split_sweep_rows_match_a_manual_run():
    tasks, x, y = _tabular()
    options = dict(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    tables = split.split_sweep(tasks, x, y, backbone=_tiny_mlp, input_shape=(8,), points=[0, "dense1"],
                               epochs=1, batch_size=8, seed=3, compile_options=options)
    assert [row["split_at"] for row in tables["age"]] == [0, "dense1"]
    assert set(tables["income"][0]) == {"split_at", "loss"}

    keras.utils.set_random_seed(3)
    model = keras_mtl.build("split", _tabular_tasks(), backbone=_tiny_mlp, input_shape=(8,),
                            split_at="dense1")
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    results = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(tables["age"][1]["loss"], results["age_loss"], rtol=1e-6)
    assert "age" in split.format_sweep(tables)


def test_cross_stitch_learning_rate_multiplier_scales_unit_updates():
    tasks, x, y = _tabular(8)
    changes = []
    for multipliers in (None, {"cross_stitch": 100.0}):
        keras.utils.set_random_seed(0)
        model = keras_mtl.build("cross_stitch", _tabular_tasks(), backbone=_tiny_mlp, input_shape=(8,))
        model.compile(optimizer=keras.optimizers.SGD(1e-3), learning_rate_multipliers=multipliers,
                      run_eagerly=True)
        before = {v.path: v.numpy() for v in model.trainable_variables}
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        changes.append({v.path: v.numpy() - before[v.path] for v in model.trainable_variables})
    for path, plain in changes[0].items():
        factor = 100.0 if path.startswith("cross_stitch_") else 1.0
        # float32 differences of values near 1 carry rounding errors of about 1e-7
        np.testing.assert_allclose(changes[1][path], factor * plain, rtol=1e-3, atol=factor * 2e-7)


def test_cross_stitch_from_single_task_models_starts_as_the_single_task_networks():
    tasks, x, y = _tabular()
    single = keras_mtl.build("single_task", tasks, backbone=_tiny_mlp, input_shape=(8,))
    for v in single.trainable_variables:
        v.assign(np.random.default_rng(len(v.path)).normal(size=v.shape).astype("float32"))
    model = cross_stitch.from_single_task_models(single, tasks, backbone=_tiny_mlp, input_shape=(8,),
                                                 alpha_s=1.0, alpha_d=0.0)
    got, expected = model(x), single(x)
    for name in single.task_names:
        np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-5, atol=1e-5)
    per_task = {t.name: keras_mtl.build("single_task", [t], backbone=_tiny_mlp, input_shape=(8,))
                for t in _tabular_tasks()}
    model = cross_stitch.from_single_task_models(per_task, tasks, backbone=_tiny_mlp, input_shape=(8,),
                                                 alpha_s=1.0, alpha_d=0.0)
    for name, one in per_task.items():
        np.testing.assert_allclose(model(x)[name].numpy(), one(x)[name].numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="No layer of the single-task models"):
        shallow = keras_mtl.build("single_task", _tabular_tasks(), backbone=lambda s: mlp(s, units=(8,)),
                                  input_shape=(8,))
        cross_stitch.from_single_task_models(shallow, _tabular_tasks(), backbone=_tiny_mlp, input_shape=(8,))


def test_cross_stitch_alphas_and_plot(tmp_path):
    model = keras_mtl.build("cross_stitch", _image_tasks(3), backbone=_tiny_conv, input_shape=(16, 16, 3),
                            units_after=["block1"], alpha_s=0.8)
    per_channel = keras_mtl.build("cross_stitch", _image_tasks(2), backbone=_tiny_conv,
                                  input_shape=(16, 16, 3), per_channel=True)
    alphas = cross_stitch.cross_stitch_alphas(model)
    np.testing.assert_allclose(alphas["cross_stitch_block1"], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],
                               rtol=1e-6)
    figure = cross_stitch.plot_cross_stitch_alphas(model)
    (ax,) = [ax for ax in figure.axes if ax.get_title() == "cross_stitch_block1"]
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        assert [label.get_text() for label in labels] == ["colour", "size", "count"]
    fig = cross_stitch.plot_cross_stitch_alphas(per_channel, path=tmp_path / "alphas.png")
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2 and (tmp_path / "alphas.png").stat().st_size > 0
    with pytest.raises(ValueError, match="at least 2 tasks"):
        keras_mtl.build("cross_stitch", _image_tasks(1), backbone=_tiny_conv, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="units_after='nope'"):
        keras_mtl.build("cross_stitch", _image_tasks(), backbone=_tiny_conv, input_shape=(16, 16, 3),
                        units_after=["nope"])


def test_gate_weights_are_the_gates_softmax():
    tasks, x, _ = _tabular()
    model = keras_mtl.build("mmoe", tasks, backbone=_tiny_mlp, input_shape=(8,), num_experts=3)
    weights = mmoe.gate_weights(model, x)
    assert set(weights) == {"income_gate", "age_gate"}
    logits = x @ model.get_layer("age_gate").kernel.numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weights["age_gate"], expected, rtol=1e-5, atol=1e-6)
    ple_model = keras_mtl.build("ple", tasks, backbone=_tiny_mlp, input_shape=(8,), num_task_experts=2)
    shapes = {k: v.shape for k, v in mmoe.gate_weights(ple_model, x).items()}
    assert shapes == {"level1_income_gate": (16, 3), "level1_age_gate": (16, 3), "level1_shared_gate": (16, 5),
                      "level2_income_gate": (16, 3), "level2_age_gate": (16, 3)}


def test_dselect_k_training_loss_adds_each_gates_penalty():
    tasks, x, y = _tabular()
    model = keras_mtl.build("dselect_k", tasks, backbone=_tiny_mlp, input_shape=(8,), num_experts=3,
                            entropy_regularization=0.2)
    model(x, training=True)
    gates = [model.get_layer(f"{t.name}_gate") for t in tasks]
    flat = x.reshape(len(x), -1)
    expected = sorted(float(g.regularization(g.selectors(flat)[0])) for g in gates)
    np.testing.assert_allclose(sorted(float(l) for l in model.losses), expected, rtol=1e-6)
    assert min(expected) > 2.0  # 3 experts: the reachability term of 2 selectors is at least 2
    model(x, training=False)
    assert not model.losses
    weights = mmoe.gate_weights(model, x)
    assert set(weights) == {"income_gate", "age_gate"} and weights["age_gate"].shape == (16, 3)


def test_attention_masks_and_plot(tmp_path):
    model = keras_mtl.build("mtan", _dense_tasks(), input_shape=(16, 16, 3), filters=(4, 8))
    x = np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype("float32")
    masks = mtan.attention_masks(model, x)
    assert list(masks) == [f"{t}_{part}_attention" for t in model.output_names
                           for part in ("encoder1", "encoder2", "decoder1", "decoder2")]
    assert masks["depth_encoder2_attention"].shape == (3, 8, 8, 8)
    assert masks["depth_decoder2_attention"].shape == (3, 16, 16, 4)
    assert all(np.all((m > 0) & (m < 1)) for m in masks.values())
    fig = mtan.plot_attention_masks(model, x, index=1, path=tmp_path / "masks.png")
    assert len(fig.axes) == 2 * 5 and (tmp_path / "masks.png").stat().st_size > 0
    with pytest.raises(ValueError, match="divisible by 8"):
        keras_mtl.build("mtan", _dense_tasks(), input_shape=(12, 12, 3), filters=(4, 8, 8))
    with pytest.raises(ValueError, match="tap"):
        keras_mtl.build("mtan", [keras_mtl.Task("a", head=1, tap="block1")], input_shape=(16, 16, 3))


def _layer_tasks():
    return [keras_mtl.Task("income", head=[keras.layers.Dense(4, name="income_hidden"), keras.layers.Dense(2)],
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            keras_mtl.Task("age", head=keras.layers.Dense(1), loss="mse")]


def _variable_ids(model):
    return {id(v) for v in model.variables}


def _fit_changes_only(model, others, x, y):
    """Fits `model` one epoch; asserts that it changed and `others` did not."""
    before = [[v.numpy() for v in m.trainable_variables] for m in (model, *others)]
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = [[v.numpy() for v in m.trainable_variables] for m in (model, *others)]
    assert not all(np.array_equal(a, b) for a, b in zip(before[0], after[0]))
    for old, new in zip(before[1:], after[1:]):
        for a, b in zip(old, new):
            np.testing.assert_array_equal(a, b)


def test_builds_from_the_same_tasks_share_no_variable():
    tasks = _layer_tasks()
    _, x, y = _tabular()
    first = keras_mtl.build("hard_sharing", tasks, backbone=_tiny_mlp, input_shape=(8,))
    baseline = keras_mtl.build("single_task", tasks, backbone=_tiny_mlp, input_shape=(8,))
    again = keras_mtl.build("hard_sharing", tasks, backbone=_tiny_mlp, input_shape=(8,))
    assert tasks[1].head in first.layers
    assert not _variable_ids(first) & _variable_ids(baseline)
    assert not _variable_ids(first) & _variable_ids(again)
    assert not _variable_ids(baseline) & _variable_ids(again)
    _fit_changes_only(baseline, [first, again], x, y)


def test_a_backbone_instance_is_used_by_one_build_only():
    _, x, y = _tabular()
    trunk = _tiny_mlp((8,))
    for v in trunk.weights:
        v.assign(np.full(v.shape, 0.1, "float32"))
    with pytest.raises(ValueError, match="split_at='nope'"):
        keras_mtl.build("split", _tabular_tasks(), backbone=trunk, split_at="nope")
    # A failed build leaves the backbone to the next one, which fine-tunes its variables.
    model = keras_mtl.build("hard_sharing", _tabular_tasks(), backbone=trunk)
    assert {id(v) for v in trunk.weights} <= _variable_ids(model)
    with pytest.raises(ValueError, match=r"backbone \(layer 'mlp_backbone'\) is already part of model 'hard_sharing'"):
        keras_mtl.build("hard_sharing", _tabular_tasks(), backbone=trunk)
    head = keras.layers.Dense(1)
    head.build((None, 6))
    keras_mtl.build("hard_sharing", [keras_mtl.Task("age", head=head, loss="mse")], backbone=_tiny_mlp,
                    input_shape=(8,))
    with pytest.raises(ValueError, match=r"Task 'age': head .*copy.set_weights\(layer.get_weights\(\)\)"):
        keras_mtl.build("hard_sharing", [keras_mtl.Task("age", head=head, loss="mse")], backbone=_tiny_mlp,
                        input_shape=(8,))


def test_an_unbuilt_backbone_layer_is_copied_fresh_for_a_second_build():
    _, x, y = _tabular()
    trunk = keras.layers.Dense(6, name="trunk")
    first = keras_mtl.build("hard_sharing", _tabular_tasks(), backbone=trunk, input_shape=(8,))
    second = keras_mtl.build("hard_sharing", _tabular_tasks(), backbone=trunk, input_shape=(8,))
    assert trunk in first.layers and trunk not in second.layers
    assert second.get_layer("trunk").get_config() == trunk.get_config()
    assert not _variable_ids(first) & _variable_ids(second)
    _fit_changes_only(second, [first], x, y)


def test_split_sweep_leaves_a_backbone_instance_unchanged():
    tasks, x, y = _tabular()
    trunk = _tiny_mlp((8,))
    before = [w.copy() for w in trunk.get_weights()]
    split.split_sweep(tasks, x, y, backbone=trunk, points=[0, "dense1", 2], epochs=1, batch_size=8,
                      compile_options=dict(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True))
    for a, b in zip(before, trunk.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The sweep used copies, so the instance is still free for a build of its own.
    assert {id(v) for v in trunk.weights} <= _variable_ids(keras_mtl.build("hard_sharing", tasks, backbone=trunk))


def test_cross_stitch_from_single_task_models_shares_no_variable_with_them():
    tasks = _layer_tasks()
    _, x, y = _tabular()
    single = keras_mtl.build("single_task", tasks, backbone=_tiny_mlp, input_shape=(8,))
    model = cross_stitch.from_single_task_models(single, tasks, backbone=_tiny_mlp, input_shape=(8,),
                                                 alpha_s=1.0, alpha_d=0.0)
    for name in single.task_names:
        np.testing.assert_allclose(model(x)[name].numpy(), single(x)[name].numpy(), rtol=1e-5, atol=1e-5)
    assert not _variable_ids(model) & _variable_ids(single)
    _fit_changes_only(model, [single], x, y)


def test_a_head_layer_shared_by_two_tasks_stays_shared_within_a_later_build():
    hidden = keras.layers.Dense(4, name="hidden")
    tasks = [keras_mtl.Task("income", head=[hidden, keras.layers.Dense(2)], loss="mse"),
             keras_mtl.Task("age", head=[hidden, keras.layers.Dense(1)], loss="mse")]
    first = keras_mtl.build("hard_sharing", tasks, backbone=_tiny_mlp, input_shape=(8,))
    second = keras_mtl.build("hard_sharing", tasks, backbone=_tiny_mlp, input_shape=(8,))
    assert first.get_layer("hidden") is hidden
    assert second.get_layer("hidden") is not hidden
    assert [v.path for v in second.shared_variables if "hidden" in v.path] == ["hidden/kernel", "hidden/bias"]
