"""The random weighting methods draw from their papers' distributions on JAX (the
checks and their float64 references: `tests/random_draws.py`; the same checks run on
TensorFlow in `tests/test_random_draws.py`)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import random_draws  # noqa: E402


@pytest.mark.parametrize("check", list(random_draws.CHECKS))
def test_draws_follow_the_papers_distribution(check):
    random_draws.CHECKS[check]()
