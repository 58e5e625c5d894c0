"""Agreement with TorchJD 0.18 (the peer): the same float64 Jacobians to keras_mtl (with
floatx float64) and to TorchJD's aggregators, for each method both have. Where they
differ by definition, the test says which source each follows (docs/methods.md has the
table)."""

import os
import sys

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchjd_aggregation = pytest.importorskip("torchjd.aggregation")
pytest.importorskip("quadprog")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gradient_references as ref  # noqa: E402
from keras_mtl import weighting  # noqa: E402
from weighting_utils import run_steps, solve_gradients  # noqa: E402

from torchjd._linalg import QuadprogProjector  # noqa: E402

pytestmark = pytest.mark.peers

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def _float64():
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx("float32")


def _cases(full_rank_only=False):
    """(name, float64 K x P Jacobian): the stress families and the degenerate ones
    ("zero-in-hull" is rank 3 of 4 to float32 rounding: singular values 1e-8 apart)."""
    cases = [(name, grads.astype("float64")) for name, grads in ref.stress_cases()]
    for name, grads, present in ref.hard_cases():
        if present.all() and not (full_rank_only and name in ("k6-in-r3", "rank2-k5", "duplicated",
                                                               "parallel", "zero-row", "zero-in-hull")):
            cases.append((name, grads.astype("float64")))
    return cases


def _ours(method, jacobian):
    """keras_mtl's combined direction for the float64 `jacobian`."""
    return solve_gradients(method, jacobian)[0]


def _peer(aggregator, jacobian):
    return aggregator(torch.from_numpy(jacobian)).numpy()


def _relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_dual_cone_projections_agree_without_the_peers_regularisation(name):
    """UPGrad and DualProj, the paper's definitions (Quinton and Rey 2024, Proposition 1),
    agree to 1e-5 with TorchJD's solved without its regularisation (`reg_eps=0`;
    quadprog needs a positive definite Gramian, so full-rank inputs only). keras_mtl is
    on the scale of the summed gradients, TorchJD on the mean's: ours / K."""
    peer_class = {"upgrad": torchjd_aggregation.UPGrad, "dualproj": torchjd_aggregation.DualProj}[name]
    peer = peer_class(projector=QuadprogProjector(norm_eps=0.0, reg_eps=0.0))
    methods = {}
    for case, jacobian in _cases(full_rank_only=True):
        method = methods.setdefault(len(jacobian), weighting.get(name))
        ours = _ours(method, jacobian) / len(jacobian)
        assert _relative(ours, _peer(peer, jacobian)) < TOLERANCE, (name, case)


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_the_peers_default_regularisation_moves_the_projection_off_the_dual_cone(name):
    """TorchJD's default solves on `G / trace(G) + 1e-4 I`: on ill-conditioned inputs its
    update is not the paper's projection and conflicts with a task, which keras_mtl's
    does not (both checked on the float64 reference's terms)."""
    peer_class = {"upgrad": torchjd_aggregation.UPGrad, "dualproj": torchjd_aggregation.DualProj}[name]
    peer = peer_class()
    reference = {"upgrad": ref.upgrad, "dualproj": ref.dualproj}[name]
    differences = []
    methods = {}
    for case, jacobian in _cases(full_rank_only=True):
        method = methods.setdefault(len(jacobian), weighting.get(name))
        k = len(jacobian)
        expected = reference(jacobian) @ jacobian / k
        ours = _ours(method, jacobian) / k
        assert _relative(ours, expected) < TOLERANCE, case
        differences.append(_relative(_peer(peer, jacobian), expected))
    assert max(differences) > 1e-3, max(differences)


def test_config_agrees():
    """ConFIG: TorchJD's is the authors' code (pinv of the unit gradients, equation 2),
    on the same sum scale. On rank-deficient inputs the two pseudo-inverses cut
    different singular values (TorchJD: `P eps sigma_max` on the Jacobian; keras_mtl:
    `sqrt(K eps) sigma_max`, from the Gramian): compared on full-rank inputs."""
    peer = torchjd_aggregation.ConFIG()
    methods = {}
    for case, jacobian in _cases(full_rank_only=True):
        method = methods.setdefault(len(jacobian), weighting.ConFIG())
        assert _relative(_ours(method, jacobian), _peer(peer, jacobian)) < TOLERANCE, case


def test_trimmed_mean_agrees():
    """The trimmed mean: the same definition (Yin et al. 2018); TorchJD averages, keras_mtl
    is on the sum scale: ours / K."""
    for trim_number in (0, 1, 2):
        peer = torchjd_aggregation.TrimmedMean(trim_number=trim_number)
        methods = {}
        for case, jacobian in _cases():
            if len(jacobian) < 2 * trim_number + 1:
                continue
            method = methods.setdefault(len(jacobian), weighting.TrimmedMean(trim_number=trim_number))
            ours = _ours(method, jacobian) / len(jacobian)
            assert _relative(ours, _peer(peer, jacobian)) < TOLERANCE, (case, trim_number)


def test_krum_agrees_where_the_distance_rules_pick_the_same():
    """Krum: the paper scores a gradient by the sum of its SQUARED distances to its
    `n - f - 2` nearest others (Blanchard et al. 2017, definition of Krum); TorchJD 0.18
    sums the distances themselves (`KrumWeighting.forward`). keras_mtl follows the
    paper. Where the two rules select the same gradient the results agree (ours / K);
    on this constructed input they do not, and keras_mtl is the paper's."""
    methods = {}
    for case, jacobian in _cases():
        k = len(jacobian)
        if k < 4:
            continue
        f = (k - 3) // 2
        peer = torchjd_aggregation.Krum(n_byzantine=f)
        assert _relative(_peer(peer, jacobian), ref.krum(jacobian, f, squared=False) @ jacobian) < TOLERANCE
        if np.array_equal(ref.krum(jacobian, f), ref.krum(jacobian, f, squared=False)):
            method = methods.setdefault(k, weighting.Krum(n_byzantine=f))
            assert _relative(_ours(method, jacobian) / k, _peer(peer, jacobian)) < TOLERANCE, case
    # Scores over the 2 nearest others: distances sum to 5.54 for task 1 and 5.66 for
    # task 3, squares to 16.35 and 16.17: TorchJD picks task 1, the paper task 3.
    jacobian = np.array([[1.0, 2.0], [-0.3, -2.1], [1.7, -2.6], [-1.4, 1.2], [-4.5, 0.8]])
    ours = _ours(weighting.Krum(n_byzantine=1), jacobian) / 5
    np.testing.assert_allclose(ours, jacobian[3], rtol=1e-12)
    np.testing.assert_allclose(_peer(torchjd_aggregation.Krum(n_byzantine=1), jacobian), jacobian[1])


def test_imtl_l_agrees():
    """IMTL-L: TorchJD's `IMTLL` has the same objective `sum_k exp(s_k) L_k - s_k` and
    the same start (s = 0); compared at random scales and losses."""
    from torchjd.scalarization import IMTLL

    rng = np.random.default_rng(0)
    for k in (2, 5, 10):
        s, losses = rng.normal(size=k), np.exp(rng.normal(size=k) * 3)
        method = weighting.IMTLL()
        method.build((k,))
        method.log_scales.assign(s)
        ours = float(method.combine(keras.ops.convert_to_tensor(losses), training=True)[0])
        peer = IMTLL(k).double()
        with torch.no_grad():
            peer.log_scale.copy_(torch.from_numpy(s))
        assert abs(ours - float(peer(torch.from_numpy(losses)))) <= TOLERANCE * abs(ours)


def _scalarizer_cases():
    """(K, float64 losses): random losses over twelve orders of magnitude."""
    rng = np.random.default_rng(1)
    return [(k, np.exp(rng.normal(size=k) * 4)) for k in (2, 3, 5, 10) for _ in range(3)]


def test_stch_agrees():
    """STCH after its warm-up: keras_mtl's `K mu log sum_k exp(log(L_k / n_k) / mu)` (the
    authors' multi-task form) is K times TorchJD's `STCH(mu, weights=1)` (the paper's
    `mu log sum_k exp(lambda_k (f_k - z_k) / mu)`, unit preferences) on the objectives
    `f_k = log L_k` and the ideal point `z_k = log n_k`."""
    from torchjd.scalarization import STCH

    rng = np.random.default_rng(2)
    for k, losses in _scalarizer_cases():
        nadir = np.exp(rng.normal(size=k))
        for mu in (0.05, 1.0, 5.0):
            method = weighting.STCH(mu=mu, warmup_epochs=1)
            method.build((k,))
            method.loss_sum.assign(nadir)
            method.loss_count.assign(np.ones(k))
            method.epochs_seen.assign(1.0)
            ours = float(method.combine(keras.ops.convert_to_tensor(losses))[0])
            peer = STCH(mu, weights=torch.ones(k, dtype=torch.float64))
            theirs = float(peer(torch.from_numpy(np.log(losses) - np.log(nadir))))
            assert abs(ours - k * theirs) <= TOLERANCE * abs(ours), (k, mu, ours, k * theirs)


def test_geometric_mean_is_gls():
    """TorchJD's `GeometricMean` is GLS (Chennupati et al. 2019), keras_mtl's `gls`: the
    same objective on losses above GLS's floor (`keras.config.epsilon()`)."""
    from torchjd.scalarization import GeometricMean

    for k, losses in _scalarizer_cases():
        method = weighting.GLS()
        method.build((k,))
        losses = np.maximum(losses, 1e-6)
        ours = float(method.combine(keras.ops.convert_to_tensor(losses))[0])
        theirs = float(GeometricMean()(torch.from_numpy(losses)))
        assert abs(ours - theirs) <= TOLERANCE * abs(ours), (k, ours, theirs)


def test_fairgrad_agrees_where_the_peers_solver_converges():
    """FairGrad, the same equation (Ban and Ji 2024, equation 4: `G G^T w = w^(-1/alpha)`)
    and the same scale (the sum `sum_k w_k g_k`, unclipped). TorchJD solves it with
    scipy's `least_squares` from uniform weights at its default tolerances (`1e-8` on the
    cost's change): compared where its answer satisfies the equation to 1e-9 relative
    (its residual, as keras_mtl's). keras_mtl's own answer is checked against the float64
    reference on every input, the ones where the peer stops early included."""
    compared = 0
    for alpha in (0.5, 1.0, 2.0):
        peer = torchjd_aggregation.FairGrad(alpha=alpha)
        methods = {}
        for case, jacobian in _cases(full_rank_only=True):
            method = methods.setdefault(len(jacobian), weighting.FairGrad(alpha=alpha))
            _, weights, _, _ = solve_gradients(method, jacobian)
            expected = ref.fairgrad(jacobian, alpha)
            assert _relative(weights, expected) < TOLERANCE, (case, alpha)
            gram = jacobian @ jacobian.T
            theirs = peer.gramian_weighting(torch.from_numpy(gram)).numpy()
            if np.max(np.abs(theirs ** (1 / alpha) * (gram @ theirs) - 1)) < 1e-9:
                compared += 1
                assert _relative(_ours(method, jacobian), _peer(peer, jacobian)) < TOLERANCE, (case, alpha)
    assert compared >= 20, compared


def test_pbi_agrees():
    """PBI (Zhang and Li 2007): TorchJD's `PBI(theta, weights, reference)` is the same
    `d1 + theta d2`; it adds 1e-12 under the square root of `d2` (a shift of at most
    1e-6 where `d2` is 0), which these inputs, off the ray, are far from."""
    from torchjd.scalarization import PBI

    rng = np.random.default_rng(3)
    for k, losses in _scalarizer_cases():
        preference, point = rng.uniform(0.1, 2.0, size=k), -np.exp(rng.normal(size=k))
        for theta in (0.0, 5.0, 50.0):
            method = weighting.PBI(theta=theta, preference=list(preference), reference=list(point))
            method.build((k,))
            ours = float(method.combine(keras.ops.convert_to_tensor(losses))[0])
            peer = PBI(theta, weights=torch.from_numpy(preference), reference=torch.from_numpy(point))
            theirs = float(peer(torch.from_numpy(losses)))
            assert abs(ours - theirs) <= TOLERANCE * abs(ours), (k, theta, ours, theirs)


def test_cosmos_agrees():
    """COSMOS (Ruchte and Grabocka 2021, equation 4): TorchJD's `COSMOS(lambda_,
    weights)` is the same `r . L - lambda cos(r, L)` on the given ray."""
    from torchjd.scalarization import COSMOS

    rng = np.random.default_rng(4)
    for k, losses in _scalarizer_cases():
        preference = rng.dirichlet(np.full(k, 1.2))
        for penalty in (0.01, 2.0, 8.0):
            method = weighting.COSMOS(cosine_penalty=penalty, preference=list(preference))
            method.build((k,))
            ours = float(method.combine(keras.ops.convert_to_tensor(losses))[0])
            theirs = float(COSMOS(penalty, weights=torch.from_numpy(preference))(torch.from_numpy(losses)))
            assert abs(ours - theirs) <= TOLERANCE * max(abs(ours), penalty), (k, penalty, ours, theirs)


def test_weight_smoothing_agrees():
    """CR-MOGM (Zhou et al. 2022): TorchJD's `CRMOGMWeighting(UPGradWeighting(...), alpha)`
    and keras_mtl's `CRMOGM(inner="upgrad", alpha)` over the same sequence of full-rank
    Jacobians (TorchJD's projection without its regularisation, as above; the average is
    linear, so ours / K against its mean scale)."""
    steps = [jacobian for _, jacobian in _cases(full_rank_only=True) if len(jacobian) == 5]
    assert len(steps) >= 5
    for alpha in (0.5, 0.9):
        peer = torchjd_aggregation.CRMOGMWeighting(
            torchjd_aggregation.UPGradWeighting(projector=QuadprogProjector(norm_eps=0.0, reg_eps=0.0)), alpha=alpha)
        method = weighting.CRMOGM(inner="upgrad", alpha=alpha)
        for step, jacobian in enumerate(steps):
            ours = solve_gradients(method, jacobian)[1] / 5
            theirs = peer(torch.from_numpy(jacobian @ jacobian.T)).numpy()
            assert _relative(ours, theirs) < TOLERANCE, (alpha, step, ours, theirs)


def test_excess_risk_weighting_agrees():
    """ExcessMTL (He et al. 2024): TorchJD's `ExcessMTLWeighting(eta, n_warmup_steps=1)`
    (the first step's excess risks the baselines, the weights kept on it, as the authors'
    code does) and keras_mtl's `ExcessMTL(eta)` over the same sequence of Jacobians
    (ours / K against its weights on the simplex). The Jacobians are scaled by 100, so
    that TorchJD's 1e-7 floors (under the square root of the accumulated squares and
    added to the baselines) move the weights by less than 1e-7."""
    steps = [100.0 * jacobian for _, jacobian in _cases() if len(jacobian) == 5 and jacobian.shape[1] == 48]
    assert len(steps) >= 8
    for eta in (0.01, 0.3):
        peer = torchjd_aggregation.ExcessMTLWeighting(robust_step_size=eta, n_warmup_steps=1)
        method = weighting.ExcessMTL(robust_step_size=eta)
        ours = run_steps(method, [(jacobian, np.ones(5), np.ones(5, bool)) for jacobian in steps])
        for step, (jacobian, (_, weights)) in enumerate(zip(steps, ours)):
            theirs = peer(torch.from_numpy(jacobian)).numpy()
            assert _relative(weights / 5, theirs) < TOLERANCE, (eta, step, weights / 5, theirs)
        assert np.ptp(theirs) > 1e-3  # the weights moved
