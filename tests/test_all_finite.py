"""`all_finite`, the non-finite test of a train step, in both of its forms."""

import keras
import numpy as np
import pytest

from keras_mtl.backend.common import all_finite


def _check(losses, grads, test, optimizer=None):
    optimizer = optimizer or keras.optimizers.SGD()
    return bool(np.asarray(all_finite(
        keras.ops.convert_to_tensor(np.asarray(losses, "float32")),
        [None if g is None else keras.ops.convert_to_tensor(np.asarray(g, "float32"))
         for g in grads], optimizer, test=test)))


@pytest.mark.parametrize("test", ["sum", "entries"])
def test_a_nan_or_inf_anywhere_makes_the_step_nonfinite(test):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(4, 3)), None, rng.normal(size=(3,))]
    assert _check([0.5, 2.0], grads, test)
    for bad in (np.nan, np.inf, -np.inf):
        for k, shape in ((0, (4, 3)), (2, (3,))):
            broken = [g if g is None else g.copy() for g in grads]
            broken[k][np.unravel_index(5 % broken[k].size, shape)] = bad
            assert not _check([0.5, 2.0], broken, test), (bad, k)
        assert not _check([0.5, bad], grads, test)
    # Opposite infinities in one tensor: its sum is NaN, and neither entry is finite.
    assert not _check([0.5, 2.0], [np.array([np.inf, -np.inf]), None, grads[2]], test)


def test_entries_are_exact_where_the_sum_overflows():
    big = np.full((8,), 3e38, "float32")  # finite entries, float32 sum overflows
    assert _check([1.0], [big], "entries")
    assert not _check([1.0], [big], "sum")


@pytest.mark.parametrize("test", ["sum", "entries"])
def test_under_loss_scaling_only_the_losses_count(test):
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
    assert _check([1.0, 2.0], [np.array([np.nan])], test, optimizer)
    assert not _check([1.0, np.nan], [np.array([0.0])], test, optimizer)
