"""Student's t distribution, the paired t-test and rank correlations, in float64 without scipy.

The two-sided tail of Student's t with `df` degrees of freedom is the regularised
incomplete beta function `I_x(df/2, 1/2)` at `x = df / (df + t^2)` (Abramowitz and
Stegun 26.7.1 with 26.5.27), evaluated by its continued fraction (Lentz's method;
Press et al., Numerical Recipes, 3rd ed., section 6.4).
"""

import math

import numpy as np


def _beta_continued_fraction(a, b, x, tolerance=1e-15, max_terms=10_000):
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, max_terms + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < tolerance:
            return value
    raise RuntimeError(f"The incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}.")


def regularized_incomplete_beta(a, b, x):
    """`I_x(a, b)`, the regularised incomplete beta function, for `a, b > 0`, `0 <= x <= 1`."""
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be positive. Received: a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1]. Received: x={x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t, df):
    """`P(|T| >= |t|)` for Student's t with `df > 0` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive. Received: df={df}")
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(probability, df):
    """The `probability` quantile of Student's t (bisection on `t_two_sided_p`, to 1e-12)."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1). Received: probability={probability}")
    if probability == 0.5:
        return 0.0
    tail = 2.0 * min(probability, 1.0 - probability)  # two-sided tail beyond the quantile
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        high *= 2.0
    while high - low > 1e-12 * max(1.0, high):
        middle = 0.5 * (low + high)
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    value = 0.5 * (low + high)
    return value if probability > 0.5 else -value


def paired_t_test(differences, confidence=0.95):
    """Student's paired t-test of `mean(differences) == 0` and the mean's confidence interval.

    Args:
        differences: per-pair differences (e.g. per-seed delta_m against a baseline
            trained with the same seed), at least two.
        confidence: the confidence level of the interval.

    Returns:
        A dict: `n`, `mean`, `std` (sample standard deviation, ddof=1), `t`, `df`,
        `p` (two-sided), `ci_low`, `ci_high`. Identical differences give `std = 0`,
        `t = +-inf` and `p = 0` (or `t = 0`, `p = 1` when they are all 0).

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
    df = n - 1
    standard_error = std / math.sqrt(n)
    if standard_error == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / standard_error
    half_width = t_quantile(0.5 + confidence / 2.0, df) * standard_error
    return {"n": n, "mean": mean, "std": std, "t": t, "df": df, "p": t_two_sided_p(t, df),
            "ci_low": mean - half_width, "ci_high": mean + half_width}


def _ranks(values):
    """Ranks from 1, ties given their mean rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def _pair(x, y):
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise ValueError(f"x and y must have the same length, at least 2. Received: {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite.")
    return x, y


def spearman(x, y):
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties: mean ranks).

    NaN when either input is constant.
    """
    x, y = _pair(x, y)
    rx, ry = _ranks(x) - (x.size + 1) / 2.0, _ranks(y) - (y.size + 1) / 2.0
    denominator = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry) / denominator) if denominator > 0 else math.nan


def kendall_tau(x, y):
    """Kendall's tau-b: `(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`
    over all pairs (Kendall 1945), which is tau-a when there are no ties.

    NaN when either input is constant.
    """
    x, y = _pair(x, y)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(x.size, 1)
    dx, dy = dx[upper], dy[upper]
    denominator = math.sqrt(float(np.sum(dx != 0)) * float(np.sum(dy != 0)))
    return float(np.sum(dx * dy) / denominator) if denominator > 0 else math.nan
