"""The JAX tier: run with `KERAS_BACKEND=jax python -m pytest -q tests/jax`. Under any
other backend (the main suite's TensorFlow run) these tests are not collected."""

import gc

import keras
import pytest

collect_ignore_glob = [] if keras.backend.backend() == "jax" else ["test_*.py"]


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Drops JAX's caches of compiled programs after each test. Every XLA CPU
    executable keeps its code in memory mappings of its own; a worker process that
    runs a few hundred of these tests would otherwise keep tens of thousands of
    them and reach the kernel's limit of mappings per process (`vm.max_map_count`,
    65530), where the next compilation dies of a segmentation fault."""
    yield
    import jax

    jax.clear_caches()
    gc.collect()
