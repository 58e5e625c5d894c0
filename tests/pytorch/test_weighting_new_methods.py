"""The newer loss-space methods and weight smoothing on the PyTorch backend: the TensorFlow tier's
reference and training tests of each, run unchanged (they use the methods' public API
and `keras.ops` only; `weighting_utils.objective_and_gradient` differentiates with
`torch.autograd`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
