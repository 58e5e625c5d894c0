"""The newer weighting methods on the JAX backend: the TensorFlow tier's reference,
property and training tests of each, run unchanged (they use the methods' public API
and `keras.ops` only). Without `jax_enable_x64` the K x K work is float32, and the
reference tolerance is 1e-3 (`weighting_utils.reference_tolerance`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from test_weighting_config import (  # noqa: E402,F401
    test_fit_trains as test_config_fit_trains,
    test_matches_the_reference_and_makes_equal_angles as test_config_stress,
    test_matches_the_reference_on_degenerate_gradients as test_config_degenerate,
    test_orthogonal_gradients_by_hand as test_config_by_hand,
)
from test_weighting_dualproj import (  # noqa: E402,F401
    test_fit_trains as test_dualproj_fit_trains,
    test_matches_the_reference_on_degenerate_gradients as test_dualproj_degenerate,
    test_matches_the_reference_on_ill_conditioned_and_opposed_gradients as test_dualproj_stress,
    test_two_conflicting_gradients_by_hand as test_dualproj_by_hand,
)
from test_weighting_upgrad import (  # noqa: E402,F401
    test_absent_task_is_left_out as test_upgrad_absent_task,
    test_fit_trains as test_upgrad_fit_trains,
    test_matches_the_reference_on_degenerate_gradients as test_upgrad_degenerate,
    test_matches_the_reference_on_ill_conditioned_and_opposed_gradients as test_upgrad_stress,
    test_two_conflicting_gradients_by_hand as test_upgrad_by_hand,
)
from test_weighting_imtl_l import (  # noqa: E402,F401
    test_fit_trains_and_round_trips as test_imtl_l_fit_and_round_trip,
    test_objective_and_weights as test_imtl_l_objective,
    test_one_step_of_the_scales_follows_the_objectives_gradient as test_imtl_l_one_step,
)
from test_weighting_krum import (  # noqa: E402,F401
    test_absent_task_is_left_out as test_krum_absent_task,
    test_an_outlier_is_never_selected as test_krum_by_hand,
    test_fit_trains_and_round_trips as test_krum_fit_and_round_trip,
    test_matches_the_reference as test_krum_reference,
)
from test_weighting_trimmed_mean import (  # noqa: E402,F401
    test_by_hand as test_trimmed_mean_by_hand,
    test_fit_trains as test_trimmed_mean_fit_trains,
    test_matches_the_reference as test_trimmed_mean_reference,
)
