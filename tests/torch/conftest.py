"""The PyTorch tier: run with `KERAS_BACKEND=torch python -m pytest -q tests/torch`. Under
any other backend (the main suite's TensorFlow run) these tests are not collected."""

import keras

collect_ignore_glob = [] if keras.backend.backend() == "torch" else ["test_*.py"]
