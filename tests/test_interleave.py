"""Many-to-many training: task sampling and freezing absent tasks."""

import numpy as np
import keras
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.datasets import interleave, task_probabilities


def test_task_probabilities_follow_the_formulas():
    sizes = [100, 400, 1600]
    np.testing.assert_allclose(task_probabilities(sizes, "uniform"), [1 / 3] * 3)
    np.testing.assert_allclose(task_probabilities(sizes, "proportional"), [1 / 21, 4 / 21, 16 / 21])
    # alpha = 0.5: sqrt sizes 10, 20, 40.
    np.testing.assert_allclose(task_probabilities(sizes, "proportional", alpha=0.5),
                               [10 / 70, 20 / 70, 40 / 70])
    # Annealed over 5 epochs: alpha = 1 - 0.8 (e - 1) / 4 for e = epoch + 1 = 1..5.
    for epoch, alpha in ((0, 1.0), (1, 0.8), (4, 0.2)):
        expected = np.array(sizes, float) ** alpha
        np.testing.assert_allclose(task_probabilities(sizes, "annealed", epoch=epoch, epochs=5),
                                   expected / expected.sum(), rtol=1e-8)
    with pytest.raises(ValueError, match="sampling must be one of"):
        task_probabilities(sizes, "random")


def _task_datasets(n_a=64, n_b=256, batch=8):
    rng = np.random.default_rng(0)
    a = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(n_a, 6)).astype("float32"), rng.integers(0, 3, n_a))).batch(batch)
    b = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(n_b, 6)).astype("float32"),
         rng.normal(size=(n_b, 2)).astype("float32"))).batch(batch)
    return {"a": a, "b": b}


def test_interleave_draws_tasks_with_the_requested_frequencies():
    data = interleave(_task_datasets(), sampling="proportional", steps_per_epoch=2000, seed=1)
    counts = {"a": 0, "b": 0}
    for x, y, mask in data.as_numpy_iterator():
        (drawn,) = [k for k, m in mask.items() if m.sum() > 0]
        counts[drawn] += 1
        other = "b" if drawn == "a" else "a"
        assert mask[drawn].min() == 1.0 and mask[other].max() == 0.0
        assert not np.any(y[other])
        assert y["a"].shape == (len(x),) and y["b"].shape == (len(x), 2)
    assert counts["a"] + counts["b"] == 2000
    # p(a) = 8 / (8 + 32) = 0.2; 2000 draws give a standard deviation of ~0.009.
    assert abs(counts["a"] / 2000 - 0.2) < 0.035
    same = [m["a"].sum() for _, _, m in interleave(_task_datasets(), sampling="proportional",
                                                   steps_per_epoch=50, seed=1).as_numpy_iterator()]
    again = [m["a"].sum() for _, _, m in interleave(_task_datasets(), sampling="proportional",
                                                    steps_per_epoch=50, seed=1).as_numpy_iterator()]
    assert same == again


def test_interleave_rejects_inputs_of_different_shapes():
    data = _task_datasets()
    data["b"] = data["b"].map(lambda x, y: (tf.concat([x, x], axis=1), y))
    with pytest.raises(ValueError, match="must share shape"):
        interleave(data)


def test_freeze_absent_tasks_updates_only_the_trunk_and_the_drawn_head(two_task_model):
    model = two_task_model(features=6, b_units=2, metrics=False)
    model.compile(optimizer="adam", task_optimizer="adam", freeze_absent_tasks=True)
    assert model.task_optimizers["a"] is not model.task_optimizers["b"]
    data = interleave(_task_datasets(), sampling="uniform", steps_per_epoch=6, seed=3)
    model.fit(data, epochs=1, steps_per_epoch=6, verbose=0)  # builds every slot

    def state(name):
        return [v.numpy().copy() for v in model.task_variables[name]
                + list(model.task_optimizers[name].variables)]

    x, y, mask = next(iter(data))
    drawn = "a" if float(tf.reduce_sum(mask["a"])) > 0 else "b"
    absent = "b" if drawn == "a" else "a"
    before = {n: state(n) for n in ("a", "b")}
    trunk = [v.numpy().copy() for v in model.shared_variables]
    logs = model.train_on_batch(x, y, sample_weight=mask, return_dict=True)
    for old, new in zip(before[absent], state(absent)):
        np.testing.assert_array_equal(old, new)
    assert any(not np.array_equal(o, n) for o, n in zip(before[drawn], state(drawn)))
    assert all(not np.array_equal(o, v.numpy()) for o, v in zip(trunk, model.shared_variables))
    assert np.isfinite(logs[f"{drawn}_loss"]) and logs[f"{absent}_loss"] == 0.0
