"""Absent tasks (a batch without labels for a task, as `datasets.interleave` makes):
every weighting method leaves them out of the combination and keeps their state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl import weighting as weighting_lib
from weighting_utils import TASKS, tiny_data, tiny_model

PRESENT = np.array([True, True, False])


def _combine(method, losses, present=None):
    if not method.built:
        method.build((len(losses),))
    present = None if present is None else tf.constant(present)
    objective, weights = method.combine(tf.constant(losses, "float32"), training=True, present=present)
    return float(objective), weights.numpy()


def test_gls_is_the_geometric_mean_of_the_present_tasks():
    objective, weights = _combine(weighting_lib.GLS(), [1.0, 4.0, 0.0], PRESENT)
    assert objective == pytest.approx(2.0)
    np.testing.assert_allclose(weights, [2.0 / (2 * 1.0), 2.0 / (2 * 4.0), 0.0], rtol=1e-6)


def test_famo_mixes_the_present_tasks_only():
    losses = [0.5, 2.0, 0.0]
    _, weights = _combine(weighting_lib.FAMO(), losses, PRESENT)
    _, alone = _combine(weighting_lib.FAMO(), losses[:2])
    np.testing.assert_allclose(weights, np.append(alone, 0.0), rtol=1e-6)
    assert weights[:2].min() > 0.1  # with the absent task counted, ~1e-8


def test_famo_update_keeps_the_absent_task_state():
    method = weighting_lib.FAMO()
    _combine(method, [0.5, 2.0, 1.0])
    method.post_step(tf.constant([0.4, 1.9, 0.9]))
    before = [v.numpy().copy() for v in (method.logits, method.first_moment, method.second_moment)]
    _combine(method, [0.5, 2.0, 0.0], PRESENT)
    method.post_step(tf.constant([0.4, 1.5, 0.0]), tf.constant(PRESENT))
    after = [v.numpy() for v in (method.logits, method.first_moment, method.second_moment)]
    for old, new in zip(before, after):
        assert new[2] == old[2]
        assert not np.array_equal(new[:2], old[:2])


def test_uncertainty_leaves_the_absent_task_term_out():
    method = weighting_lib.Uncertainty(initial_log_variance=0.3)
    objective, weights = _combine(method, [1.0, 2.0, 0.0], PRESENT)
    # Kendall et al.: L / (2 sigma^2) + log sigma for a regression task, s = log sigma^2.
    expected = sum(np.exp(-0.3) / 2 * l + 0.15 for l in (1.0, 2.0))
    assert objective == pytest.approx(expected, rel=1e-6)


def test_rlw_draws_weights_over_the_present_tasks():
    method = weighting_lib.RLW(seed=0)
    for _ in range(5):
        _, weights = _combine(method, [1.0, 2.0, 0.0], PRESENT)
        assert weights[2] == 0.0 and weights.sum() == pytest.approx(1.0, rel=1e-6)


def test_dwa_averages_each_task_over_its_labelled_steps():
    method = weighting_lib.DWA()
    for epoch_losses in ([[1.0, 2.0, 3.0], [3.0, 2.0, 0.0]], [[2.0, 1.0, 0.0], [2.0, 1.0, 1.5]]):
        for losses in epoch_losses:
            _combine(method, losses, [l > 0 for l in losses])
        method.on_epoch_end()
    # Task 3 had labels once per epoch: its means are 3.0 and 1.5, not 1.5 and 0.75.
    np.testing.assert_allclose(method.previous_losses.numpy(), [[2.0, 2.0, 3.0], [2.0, 1.0, 1.5]])
    ratios = np.array([1.0, 0.5, 0.5])
    expected = 3 * np.exp(ratios / 2) / np.exp(ratios / 2).sum()
    np.testing.assert_allclose(method.current_weights.numpy(), expected, rtol=1e-6)


def test_gradnorm_starts_a_task_at_its_first_labelled_batch():
    method = weighting_lib.GradNorm()
    method.build((3,))
    gradients = tf.constant(np.random.default_rng(0).normal(size=(3, 6)), "float32")
    method.weighting_gradients(tf.constant([1.0, 2.0, 0.0]), gradients * [[1], [1], [0]], tf.constant(PRESENT))
    np.testing.assert_allclose(method.initial_losses.numpy(), [1.0, 2.0, 0.0])
    method.weighting_gradients(tf.constant([0.9, 1.8, 3.0]), gradients, tf.constant([True, True, True]))
    np.testing.assert_allclose(method.initial_losses.numpy(), [1.0, 2.0, 3.0])


def _single_task_batches(batch=16, seed=0):
    """Batches with labels for one task each (masks of zeros for the others), in turn."""
    x, y = tiny_data(n=96, seed=seed)
    batches = []
    for i, start in enumerate(range(0, 96, batch)):
        task = TASKS[i % len(TASKS)]
        rows = slice(start, start + batch)
        masks = {t: np.full(batch, float(t == task), "float32") for t in TASKS}
        batches.append((x[rows], {t: v[rows] for t, v in y.items()}, masks))
    return tf.data.Dataset.from_tensor_slices(
        tuple(np.stack([b[i] for b in batches]) if i == 0 else
              {t: np.stack([b[i][t] for b in batches]) for t in TASKS} for i in range(3)))


@pytest.mark.slow
@pytest.mark.parametrize("name", weighting_lib.available())
def test_every_method_trains_every_task_on_single_task_batches(name):
    """With one task per batch, every task still learns under every method (FAMO
    and GLS stop learning if an absent task's zero loss enters their normalisers)."""
    if name == "dtp":
        method = weighting_lib.DTP(kpis={"cls": "accuracy"})
    elif name == "fixed":
        method = weighting_lib.Fixed([1.0, 1.0, 1.0])
    elif name == "krum":
        method = weighting_lib.Krum(n_byzantine=0)
    elif name == "trimmed_mean":
        # One present task per batch: a trim would leave nothing.
        method = weighting_lib.TrimmedMean(trim_number=0)
    else:
        method = name
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=method)
    data = _single_task_batches()
    x, y = tiny_data(n=96, seed=0)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    history = model.fit(data, epochs=4, verbose=0).history
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.all(np.isfinite(history["loss"]))
    for task in TASKS:
        assert after[f"{task}_loss"] < 0.95 * before[f"{task}_loss"], (name, task, before, after)
