"""The paired t-test and rank correlations of `keras_mtl.experiments`, on scipy.stats.

scipy is an extra of the experiment tools (`pip install "keras_mtl[apps]"`), not of the
core: it is imported when a function here is called, so `import keras_mtl` works without it.
"""

import math

import numpy as np


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError:
        raise ImportError("keras_mtl.statistics needs scipy: pip install scipy "
                          "(or the extra: pip install \"keras_mtl[apps]\").") from None
    return stats


def paired_t_test(differences, confidence=0.95):
    """Student's paired t-test of `mean(differences) == 0` and the mean's confidence interval
    (`scipy.stats.ttest_1samp` with its `confidence_interval`).

    Args:
        differences: per-pair differences (e.g. per-seed delta_m against a baseline
            trained with the same seed), at least two.
        confidence: the confidence level of the interval.

    Returns:
        A dict: `n`, `mean`, `std` (sample standard deviation, ddof=1), `t`, `df`,
        `p` (two-sided), `ci_low`, `ci_high`. Identical differences give `std = 0`,
        `t = +-inf`, `p = 0` and the interval `[mean, mean]` (or `t = 0`, `p = 1` when
        they are all 0).

    Example: `paired_t_test(np.subtract(after, before))["p"]`
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    if d.size < 2:
        raise ValueError(f"A paired t-test needs at least 2 differences. Received: {d.size}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"differences must be finite. Received: {d.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")
    n, mean, std = d.size, float(d.mean()), float(d.std(ddof=1))
    result = {"n": n, "mean": mean, "std": std, "df": n - 1}
    if std == 0.0:  # scipy answers NaN here; the limit of the test is exact.
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        return {**result, "t": t, "p": 1.0 if mean == 0.0 else 0.0, "ci_low": mean, "ci_high": mean}
    test = _scipy_stats().ttest_1samp(d, 0.0)
    interval = test.confidence_interval(confidence_level=confidence)
    return {**result, "t": float(test.statistic), "p": float(test.pvalue),
            "ci_low": float(interval.low), "ci_high": float(interval.high)}


def _pair(x, y):
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise ValueError(f"x and y must have the same length, at least 2. Received: {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite.")
    return x, y


def spearman(x, y):
    """Spearman's rank correlation (`scipy.stats.spearmanr`; ties get their mean rank).

    NaN when either input is constant.
    """
    x, y = _pair(x, y)
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(_scipy_stats().spearmanr(x, y).statistic)


def kendall_tau(x, y):
    """Kendall's tau-b (`scipy.stats.kendalltau`; Kendall 1945), which is tau-a when
    there are no ties.

    NaN when either input is constant.
    """
    x, y = _pair(x, y)
    if np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(_scipy_stats().kendalltau(x, y).statistic)
