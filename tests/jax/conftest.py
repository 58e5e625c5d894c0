"""The JAX tier: run with `KERAS_BACKEND=jax python -m pytest -q tests/jax`. Under any
other backend (the main suite's TensorFlow run) these tests are not collected."""

import keras

collect_ignore_glob = [] if keras.backend.backend() == "jax" else ["test_*.py"]
