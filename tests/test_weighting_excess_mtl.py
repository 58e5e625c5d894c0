"""ExcessMTL against a float64 reference written from He et al. (ICML 2024, equations 6,
7 and 9) and the authors' code (LibMTL's `ExcessMTL`): the accumulated squared gradients,
the excess-risk estimates over their baselines and the exponentiated weights over a
sequence of steps on the hard families (rank-deficient, duplicated, parallel, a zero row,
an absent task, 0 in the hull, scales 1e-10 and 1e10) and tasks 1e20 apart in one step;
a non-finite step; the K x P state
that `compile` sizes, saved and resumed through a `.keras` file; representation mode
refused."""

import keras
import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import ExcessMTL
from weighting_utils import (assert_nonfinite_step_keeps_state, assert_round_trip, assert_weights_logged, fit_tiny,
                             run_steps, tiny_model)


def reference(steps, eta):
    """Per step `(combined, weights)`: `S_k += g_k^2`, `e_k = sum g_k^2 / sqrt(S_k)`, the
    baseline `b_k` the first positive `e_k`, then `w_k *= exp(eta e_k / b_k)` over the
    present tasks with a baseline from an earlier step, rescaled to keep the present
    tasks' total (an absent task's state kept, its weight 0 in the step)."""
    squared, baselines, weights, out = None, None, None, []
    for grads, _, present in steps:
        grads = np.asarray(grads, "float64")
        k = len(grads)
        if squared is None:
            squared, baselines, weights = np.zeros_like(grads), np.zeros(k), np.ones(k)
        squared = np.where(present[:, None], squared + grads ** 2, squared)
        excess = np.array([np.sum(g[s > 0] ** 2 / np.sqrt(s[s > 0])) for g, s in zip(grads, squared)])
        ratios = np.where(baselines > 0, excess / np.where(baselines > 0, baselines, 1.0), 0.0)
        baselines = np.where(present & (baselines == 0), excess, baselines)
        # w exp(eta r) / sum, as a softmax of log w + eta r: ratios reach 1e20 here.
        logits = np.log(weights[present]) + eta * ratios[present]
        raised = np.exp(logits - logits.max())
        weights = weights.copy()
        weights[present] = weights[present].sum() * raised / raised.sum()
        step_weights = np.where(present, weights, 0.0)
        out.append((step_weights @ grads, step_weights))
    return out


def _sequences():
    """Per hard family, four steps: its gradients with each task's rescaled by a factor
    in [0.3, 3] per step (ratios of excess risks near 1; a gradient that jumps by 1e20
    between steps drives the exponent to 1e18, where the weights are rounding), its
    present tasks on the odd steps and all on the even ones."""
    rng = np.random.default_rng(0)
    sequences = {}
    for name, grads, present in ref.hard_cases():
        k = len(grads)
        sequences[name] = [((grads * rng.uniform(0.3, 3.0, (k, 1))).astype("float32"), np.ones(k, "float32"),
                            present if t % 2 == 0 else np.ones(k, bool)) for t in range(4)]
    return sequences


@pytest.mark.parametrize("eta", [1e-2, 0.5, 3.0])
def test_matches_the_reference_on_the_hard_families(eta):
    for k, steps in _sequences().items():
        ours = run_steps(ExcessMTL(robust_step_size=eta), steps)
        expected = reference(steps, eta)
        for t, ((combined, weights), (expected_combined, expected_weights)) in enumerate(zip(ours, expected)):
            assert np.linalg.norm(combined - expected_combined) <= 1e-5 * np.linalg.norm(expected_combined), (k, t)
            np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, err_msg=f"K={k}, step {t}")
            assert np.all(weights[~steps[t][2]] == 0.0)
        assert not np.allclose(expected[-1][1], expected[-1][1][0])  # the weights moved


def test_the_ratios_do_not_depend_on_the_gradient_scale():
    # Two tasks 1e20 apart in gradient norm, each gradient doubled on the second step:
    # both ratios are the same, so the weights stay equal.
    grads = np.array([[3e-10, 4e-10, 0.0], [0.0, 6e9, 8e9]], "float32")
    method = ExcessMTL(robust_step_size=1.0)
    steps = [(grads, np.ones(2, "float32"), np.ones(2, bool)), (2 * grads, np.ones(2, "float32"), np.ones(2, bool))]
    (_, first), (combined, second) = run_steps(method, steps)
    np.testing.assert_allclose(first, [1.0, 1.0])
    np.testing.assert_allclose(second, [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(method.baselines.numpy(), [7e-10, 1.4e10], rtol=1e-6)  # sum |g| on the first step
    np.testing.assert_allclose(combined, 2 * grads.sum(axis=0), rtol=1e-6)


def test_a_nonfinite_step_keeps_the_state():
    assert_nonfinite_step_keeps_state(ExcessMTL(), ref.scaled_family(3, 1, 10.0))


def test_compile_sizes_the_state_and_it_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model, history = fit_tiny(ExcessMTL(robust_step_size=0.5), epochs=2)
    assert_weights_logged(history, 2)
    shared = sum(int(np.prod(v.shape)) for v in model.shared_variables)
    assert model.weighting.squared_gradient_sum.shape == (3, shared)
    weights = model.weighting.task_weights_state.numpy()
    assert np.isclose(weights.sum(), 3.0, rtol=1e-5) and np.ptp(weights) > 0
    assert np.all(model.weighting.baselines.numpy() > 0)
    assert_round_trip(model, tmp_path)


def test_representation_mode_and_a_missing_size_are_refused():
    with pytest.raises(ValueError, match=r"ExcessMTL .* gradient_mode='representation'"):
        ExcessMTL(gradient_mode="representation")
    with pytest.raises(ValueError, match="ExcessMTL needs the number of shared parameters.*num_shared_parameters=None"):
        ExcessMTL().build((3,))
    model = tiny_model()
    with pytest.raises(ValueError, match="gradient_mode='representation'"):
        model.compile(optimizer="adam", weighting=ExcessMTL(gradient_mode="representation"))


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf")])
def test_rejects_bad_arguments(value):
    with pytest.raises((ValueError, TypeError), match=f"robust_step_size={value}"):
        ExcessMTL(robust_step_size=value)
