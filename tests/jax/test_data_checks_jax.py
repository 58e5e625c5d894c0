"""`tests/test_data_checks.py` on the JAX backend: class labels outside the classes,
sample weights that are not masks, identity labels, partial sample-weight dicts,
string inputs, and the logged weight 0 of an absent task."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data_checks import *  # noqa: E402,F401,F403
