"""on_nonfinite="skip" on PyTorch (the cases are in skip_policy_cases.py)."""

from skip_policy_cases import test_skip_policy  # noqa: F401
