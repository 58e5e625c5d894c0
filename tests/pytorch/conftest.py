"""The PyTorch tier: run with `KERAS_BACKEND=torch python -m pytest -q tests/pytorch` (not
named `torch`: on a path where pytest puts `tests/`, a folder `torch` would be imported as
the `torch` package where PyTorch is not installed, which breaks scipy). Under
any other backend (the main suite's TensorFlow run) these tests are not collected."""

import keras

collect_ignore_glob = [] if keras.backend.backend() == "torch" else ["test_*.py"]
