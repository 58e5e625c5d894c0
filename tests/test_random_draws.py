"""The random weighting methods draw from their papers' distributions on TensorFlow
(the checks and their float64 references: `tests/random_draws.py`; the same checks
run on JAX in `tests/jax/test_random_draws.py`)."""

import keras
import pytest

import random_draws

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the TensorFlow run of tests/random_draws.py")


@pytest.mark.parametrize("check", list(random_draws.CHECKS))
def test_draws_follow_the_papers_distribution(check):
    random_draws.CHECKS[check]()
