import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: the slow tier (multi-replica and multi-worker runs in subprocesses, "
        "sweeps that train every weighting method, task-wise early stopping runs, "
        "applications, full real-data loader checks); "
        "`-m 'not slow'` leaves it out, `-m slow` runs it alone")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
