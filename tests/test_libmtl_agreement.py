"""keras_mtl's DWA, uncertainty weighting, PCGrad, MGDA and IMTL-G give LibMTL's
numbers on the same inputs (to 1e-5). Needs torch and LibMTL (`pip install
torch LibMTL --no-deps scipy`); skipped without them (CI's peers tier installs them)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from benchmarks import libmtl_compare, load_weighting_methods  # noqa: E402

REASON = libmtl_compare.libmtl_unavailable_reason()
pytestmark = [pytest.mark.peers,
              pytest.mark.skipif(REASON is not None, reason=f"LibMTL comparison needs torch and LibMTL: {REASON}")]
TOLERANCE = libmtl_compare.AGREEMENT_TOLERANCE


@pytest.fixture(autouse=True, scope="module")
def _all_weighting_methods():
    load_weighting_methods()


def _needs(name):
    import keras_mtl

    if name not in keras_mtl.weighting.available():
        pytest.skip(f"keras_mtl has no '{name}' weighting")


def test_dwa_weights_match_libmtl_over_a_loss_history():
    assert libmtl_compare.agree_dwa(seed=0) <= TOLERANCE
    assert libmtl_compare.agree_dwa(temperature=0.5, seed=1) <= TOLERANCE


def test_uncertainty_weights_and_sgd_trajectory_match_libmtl():
    assert libmtl_compare.agree_uncertainty(seed=0) <= TOLERANCE
    assert libmtl_compare.agree_uncertainty(learning_rate=0.5, seed=2) <= TOLERANCE


def test_pcgrad_combined_gradient_matches_libmtl_with_the_same_task_orders():
    _needs("pcgrad")
    assert libmtl_compare.agree_pcgrad(seeds=(0, 1, 2, 3, 4, 5)) <= TOLERANCE


def test_mgda_min_norm_point_matches_libmtl_where_its_solver_is_exact():
    _needs("mgda")
    assert libmtl_compare.agree_mgda() <= TOLERANCE


def test_mgda_min_norm_point_inside_the_simplex_matches_the_exact_solution():
    _needs("mgda")
    ours, theirs = libmtl_compare.agree_mgda_interior()
    assert ours <= TOLERANCE
    assert theirs <= 1e-4  # LibMTL stops its iterations at a weight change of 1e-5


def test_imtl_combined_gradient_matches_libmtl():
    _needs("imtl")
    assert libmtl_compare.agree_imtl() <= TOLERANCE
