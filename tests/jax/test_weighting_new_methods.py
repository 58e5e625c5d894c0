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
from test_weighting_stch import (  # noqa: E402,F401
    test_absent_tasks_are_left_out as test_stch_absent_tasks,
    test_fit_measures_the_nadir_in_the_last_warmup_epoch_and_round_trips as test_stch_fit_and_round_trip,
    test_objective_and_weights_match_the_reference as test_stch_reference,
    test_warmup_is_the_sum_of_log_losses as test_stch_warmup,
)
from test_weighting_fairgrad import (  # noqa: E402,F401
    test_absent_task_is_left_out as test_fairgrad_absent_task,
    test_fit_trains_and_round_trips as test_fairgrad_fit_and_round_trip,
    test_matches_the_reference_on_degenerate_gradients as test_fairgrad_degenerate,
    test_orthogonal_gradients_by_hand as test_fairgrad_by_hand,
)
from test_weighting_pbi import (  # noqa: E402,F401
    test_extreme_loss_scales as test_pbi_extreme_scales,
    test_fit_and_round_trip as test_pbi_fit_and_round_trip,
    test_objective_and_weights_match_the_reference as test_pbi_reference,
    test_reference_point_and_absent_tasks as test_pbi_absent_tasks,
)
from test_weighting_cosmos import (  # noqa: E402,F401
    test_absent_tasks_are_left_out as test_cosmos_absent_tasks,
    test_extreme_loss_scales as test_cosmos_extreme_scales,
    test_fit_and_round_trip as test_cosmos_fit_and_round_trip,
    test_objective_and_weights_match_the_reference as test_cosmos_reference,
)
from test_weighting_cr_mogm import (  # noqa: E402,F401
    test_an_absent_task_keeps_its_average_and_a_late_task_starts_at_its_weights as test_cr_mogm_absent_task,
    test_fit_trains_and_round_trips as test_cr_mogm_fit_and_round_trip,
    test_smooths_the_inner_methods_weights_on_the_hard_families as test_cr_mogm_hard_families,
)
from test_weighting_db_mtl import (  # noqa: E402,F401
    test_a_nonfinite_step_keeps_the_averages as test_db_mtl_nonfinite_step,
    test_compile_sizes_the_state_and_it_round_trips as test_db_mtl_fit_and_round_trip,
    test_matches_the_reference_on_the_hard_families as test_db_mtl_reference,
)
from test_weighting_moco import (  # noqa: E402,F401
    test_a_nonfinite_step_keeps_the_state as test_moco_nonfinite_step,
    test_compile_sizes_the_state_and_it_round_trips as test_moco_fit_and_round_trip,
    test_matches_the_reference_on_the_hard_families as test_moco_reference,
)
from test_weighting_excess_mtl import (  # noqa: E402,F401
    test_a_nonfinite_step_keeps_the_state as test_excess_mtl_nonfinite_step,
    test_compile_sizes_the_state_and_it_round_trips as test_excess_mtl_fit_and_round_trip,
    test_matches_the_reference_on_the_hard_families as test_excess_mtl_reference,
)
