"""The degenerate-input checks of `tests/test_gradient_degenerate.py` on JAX: every
gradient method on duplicated, parallel, opposed, zero and zero-in-hull
gradients at scales 1, 1e-10 and 1e10 against the float64 references, and the
fit of two identical tasks in both gradient modes, every step applied."""

import pytest

import test_gradient_degenerate as degenerate


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(degenerate.CHECKS))
def test_every_gradient_method_solves_degenerate_input(method):
    degenerate.test_every_gradient_method_solves_degenerate_input(method)


def test_cagrad_with_duplicated_gradients_is_the_single_task_direction():
    degenerate.test_cagrad_with_duplicated_gradients_is_the_single_task_direction()


def test_cagrad_c_above_one_with_zero_in_the_hull_is_zero():
    degenerate.test_cagrad_c_above_one_with_zero_in_the_hull_is_zero()


@pytest.mark.parametrize("gradient_mode", ["shared_parameters", "representation"])
@pytest.mark.parametrize("weighting", degenerate.GRADIENT_METHODS)
def test_identical_tasks_train_every_step(weighting, gradient_mode):
    degenerate.check_identical_tasks_train(weighting, gradient_mode)
