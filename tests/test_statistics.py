"""The paired t-test and rank correlations (on scipy.stats) against closed forms,
published values and float64 references written independently; and `import keras_mtl`
without scipy."""

import math
import subprocess
import sys

import numpy as np
import pytest

from keras_mtl.statistics import kendall_tau, paired_t_test, spearman


@pytest.mark.parametrize("t", [0.1, 0.7, 1.5, 3.2, 12.7, 80.0])
def test_p_value_matches_the_closed_forms_for_one_and_two_degrees_of_freedom(t):
    # Differences with a given t: mean t * se; df=1 is the Cauchy distribution, df=2
    # has the tail 1 - t / sqrt(2 + t^2).
    for n, tail in ((2, 1 - 2 / math.pi * math.atan(t)), (3, 1 - t / math.sqrt(2 + t * t))):
        noise = np.array([-1.0, 1.0] if n == 2 else [-1.0, 0.0, 1.0])
        standard_error = noise.std(ddof=1) / math.sqrt(n)
        test = paired_t_test(-(noise + t * standard_error))
        assert test["t"] == pytest.approx(-t, rel=1e-12)
        assert test["p"] == pytest.approx(tail, rel=1e-10, abs=1e-15)


def test_interval_uses_the_textbook_critical_values():
    # Two-sided 5% critical values of Student's t (any statistics table).
    rng = np.random.default_rng(0)
    for df, critical in ((1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (10, 2.228138852),
                         (30, 2.042272456)):
        d = rng.normal(0.3, 2.0, size=df + 1)
        test = paired_t_test(d)
        standard_error = d.std(ddof=1) / math.sqrt(d.size)
        assert (test["ci_high"] - test["mean"]) / standard_error == pytest.approx(critical, rel=1e-8)
        assert (test["mean"] - test["ci_low"]) / standard_error == pytest.approx(critical, rel=1e-8)


def test_paired_t_test_on_students_sleep_data():
    # Cushny and Peebles' sleep data (Student 1908), R's `t.test(extra ~ group, data = sleep,
    # paired = TRUE)`: t = -4.0621, df = 9, p-value = 0.002833, 95% CI -2.4598858 -0.7001142.
    drug_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
    drug_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])
    test = paired_t_test(drug_1 - drug_2)
    assert test["n"] == 10 and test["df"] == 9
    assert test["mean"] == pytest.approx(-1.58)
    assert test["t"] == pytest.approx(-4.0621, abs=1e-4)
    assert test["p"] == pytest.approx(0.002833, abs=1e-6)
    assert test["ci_low"] == pytest.approx(-2.4598858, abs=1e-7)
    assert test["ci_high"] == pytest.approx(-0.7001142, abs=1e-7)


def test_paired_t_test_edge_cases():
    constant = paired_t_test([2.0, 2.0, 2.0])
    assert constant["t"] == math.inf and constant["p"] == 0.0 and constant["std"] == 0.0
    zeros = paired_t_test([0.0, 0.0])
    assert zeros["t"] == 0.0 and zeros["p"] == 1.0
    assert paired_t_test([-1.5, -1.5])["t"] == -math.inf and constant["ci_low"] == constant["ci_high"] == 2.0
    with pytest.raises(ValueError, match="at least 2"):
        paired_t_test([1.0])
    with pytest.raises(ValueError, match="finite"):
        paired_t_test([1.0, math.nan])


def test_spearman_and_kendall_on_a_textbook_example_and_against_numpy():
    # Ten contestants ranked by two judges, no ties: sum d^2 = 22, so Spearman's
    # formula gives rho = 1 - 6 * 22 / (10 * 99) = 0.8666...
    judge_1 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    judge_2 = [3, 1, 4, 2, 6, 5, 9, 7, 10, 8]
    assert spearman(judge_1, judge_2) == pytest.approx(1 - 6 * 22 / 990, rel=1e-12)
    # Kendall: count concordant and discordant pairs directly.
    pairs = [(i, j) for i in range(10) for j in range(i + 1, 10)]
    concordant = sum((judge_1[i] - judge_1[j]) * (judge_2[i] - judge_2[j]) > 0 for i, j in pairs)
    assert kendall_tau(judge_1, judge_2) == pytest.approx((2 * concordant - len(pairs)) / len(pairs), rel=1e-12)


def test_rank_correlations_with_ties_match_a_float64_reference():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=12).astype(float)      # many ties
    y = x * 0.5 + rng.normal(size=12)

    def ranks(v):  # mean ranks of ties, written independently
        return np.array([np.sum(v < a) + (np.sum(v == a) + 1) / 2 for a in v])

    assert spearman(x, y) == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1], rel=1e-12)
    n0 = 12 * 11 / 2
    concordant_minus_discordant = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
                                      for i in range(12) for j in range(i + 1, 12))
    ties_x = sum(np.sum(x == v) * (np.sum(x == v) - 1) / 2 for v in np.unique(x))
    assert kendall_tau(x, y) == pytest.approx(concordant_minus_discordant / np.sqrt((n0 - ties_x) * n0), rel=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])


def test_import_keras_mtl_works_without_scipy_and_statistics_names_it():
    code = ("import sys; sys.modules['scipy'] = None\n"
            "import keras_mtl\n"
            "try:\n    keras_mtl.statistics.paired_t_test([1.0, 2.0])\n"
            "except ImportError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "keras_mtl.statistics needs scipy" in done.stdout
