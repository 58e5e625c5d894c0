"""The weighting methods that draw random numbers (RLW's weights, PCGrad's and
GradVac's task orders, GradDrop's sign choices) draw them with `keras.random` and a
`SeedGenerator`, so each backend draws other values from the same seed; what must
agree is their distribution. Each `check_*` draws on the backend in use and compares
the draws with the distribution the paper defines, computed in float64 numpy, by a
test whose false-alarm rate is about 1e-3 (the draws are seeded, so a run repeats).
`tests/test_random_draws.py` runs them on TensorFlow, `tests/jax/test_random_draws.py`
on JAX.

RLW, PCGrad and GradVac draw through `fit` (each step's task weights recovered from
the logged epoch means): the trainer must carry the seed generator's state from step
to step. GradDrop's choices do not show in the logs; it draws through its own
`combine_gradients`.
"""

import functools
import itertools
import math

import keras
import numpy as np

import keras_mtl

# The standard normal quantile of 1 - 1e-3, for Wilson and Hilferty's chi-square quantile.
_Z = 3.090232306167813
_ALPHA = 1e-3


def chi_square_quantile(dof, upper=True):
    """The 1 - 1e-3 (`upper`) or 1e-3 quantile of chi-square with `dof` degrees of
    freedom (Wilson and Hilferty's approximation, within 1% for dof >= 5)."""
    z = _Z if upper else -_Z
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def ks_statistic(sample, cdf):
    """Kolmogorov-Smirnov distance of a sample from a continuous distribution."""
    x = np.sort(np.asarray(sample, "float64"))
    n = len(x)
    f = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def ks_critical(n, alpha=_ALPHA):
    """The distance that a sample of n from the distribution exceeds with probability
    about alpha (the asymptotic Kolmogorov bound)."""
    return math.sqrt(-math.log(alpha / 2) / 2) / math.sqrt(n)


def normal_cdf(std):
    erf = np.vectorize(math.erf)
    return lambda x: 0.5 * (1 + erf(np.asarray(x) / (std * math.sqrt(2))))


# --------------------------------------------------------------------------- models


def _linear_model(shared_kernel, head_kernels):
    """Inputs of ones, one shared `Dense(D)` without bias (kernel `shared_kernel`, so
    the representation is that vector) and K heads `Dense(1)` without bias (kernels
    `head_kernels[k]`), mean squared error against zero labels: task k's loss is
    `(w . c_k)^2` and its gradient of the shared kernel `2 (w . c_k) c_k`."""
    inputs = keras.Input((1,))
    constant = keras.initializers.Constant
    h = keras.layers.Dense(len(shared_kernel), use_bias=False, name="shared",
                           kernel_initializer=constant(np.asarray(shared_kernel)[None]))(inputs)
    outputs = {f"t{k}": keras.layers.Dense(1, use_bias=False, name=f"t{k}",
                                           kernel_initializer=constant(np.asarray(c)[:, None]))(h)
               for k, c in enumerate(head_kernels)}
    tasks = [keras_mtl.Task(name, loss="mse") for name in outputs]
    return keras_mtl.MultiTaskModel(inputs=inputs, outputs=outputs, tasks=tasks)


# The linear model's shared kernel and heads: the three task gradients conflict
# pairwise, so every row's order changes the result (8 outcomes of PCGrad, 1/8 each).
SHARED_KERNEL = np.array([1.0, 0.2, -0.1, 0.3])
HEAD_KERNELS = np.array([[0.4, math.cos(t), math.sin(t), 0.1 * k] for k, t in
                         enumerate((0.0, 1.9, 4.3))]) * np.array([[1.0], [1.3], [2.0]])


class _StepWeights(keras.callbacks.Callback):
    """Each step's task weights, from the epoch means that the batch logs give
    (`w_t = t m_t - (t - 1) m_(t-1)`, in float64; the float32 means lose about
    1e-7 t of a weight)."""

    def __init__(self, names):
        super().__init__()
        self.names, self.steps = names, []

    def on_epoch_begin(self, epoch, logs=None):
        self.previous = np.zeros(len(self.names))

    def on_train_batch_end(self, batch, logs=None):
        means = np.array([logs[f"{name}_weight"] for name in self.names], "float64")
        self.steps.append((batch + 1) * means - batch * self.previous)
        self.previous = means


def logged_weights_by_step(weighting, steps, steps_per_epoch=250):
    """`(steps, K)`: the task weights that `fit` logs at each of `steps` train
    steps of SGD(0) on the linear model (so every step sees the same model)."""
    model = _linear_model(SHARED_KERNEL, HEAD_KERNELS)
    model.compile(optimizer=keras.optimizers.SGD(0.0), weighting=weighting)
    x = np.ones((16 * steps_per_epoch, 1), "float32")
    y = {name: np.zeros_like(x) for name in model.task_names}
    recorder = _StepWeights(model.task_names)
    model.fit(x, y, batch_size=16, epochs=-(-steps // steps_per_epoch), verbose=0,
              shuffle=False, callbacks=[recorder])
    return np.array(recorder.steps[:steps])


# ----------------------------------------------------------------------------- RLW


def check_rlw(steps=1500, seed=1):
    """RLW's weights are `softmax(z)`, `z ~ N(0, I_K)` afresh each step: the centred
    log-weights `log w - mean(log w) = z - mean(z)` are exactly N(0, I - J/K)."""
    weights = logged_weights_by_step(keras_mtl.weighting.RLW(seed=seed), steps)
    k = weights.shape[1]
    assert weights.shape == (steps, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)  # recovered means
    centred = np.log(weights) - np.log(weights).mean(axis=1, keepdims=True)
    std = math.sqrt((k - 1) / k)
    for i in range(k):
        distance = ks_statistic(centred[:, i], normal_cdf(std))
        assert distance < ks_critical(steps, _ALPHA / k), (i, distance)
    covariance = np.cov(centred, rowvar=False)
    expected = np.eye(k) - 1 / k
    standard_error = np.sqrt((np.outer(np.diag(covariance), np.diag(covariance))
                              + covariance ** 2) / steps)
    assert np.all(np.abs(covariance - expected) < 4.5 * standard_error), covariance
    # Independent from one step to the next.
    lag = np.corrcoef(centred[:-1, 0], centred[1:, 0])[0, 1]
    assert abs(lag) < 4 / math.sqrt(steps), lag


# ------------------------------------------------------------------ PCGrad, GradVac


def ordered_projection_outcomes(grads, project_self):
    """`{weights: probability}` of the effective weights `sum_i C_ij` of PCGrad's
    surgery when every row i draws its order of the K tasks uniformly and
    independently (all (K!)^K combinations, float64): row i starts at `g_i` and, for
    each task j in its order (itself included when `project_self`), projects off
    `g_j` when they conflict (GradVac with zero targets does the same, skipping i)."""
    k = len(grads)
    rows = []
    for i in range(k):
        by_order = {}
        for order in itertools.permutations(range(k)):
            p, coefficients = grads[i].copy(), np.eye(k)[i].copy()
            for j in order:
                if j == i and not project_self:
                    continue
                product = p @ grads[j]
                if product < 0:
                    scale = product / (grads[j] @ grads[j])
                    p -= scale * grads[j]
                    coefficients[j] -= scale
            by_order[order] = coefficients
        rows.append(by_order)
    outcomes = {}
    combinations = list(itertools.product(*(list(r.values()) for r in rows)))
    for chosen in combinations:
        key = tuple(np.round(np.sum(chosen, axis=0), 9))
        outcomes[key] = outcomes.get(key, 0) + 1 / len(combinations)
    return outcomes


def check_task_orders(name, gradient_mode="shared_parameters", steps=800, seed=2):
    """The weights PCGrad (or GradVac with beta=0: zero targets) logs at each step on
    the linear model fall on the outcomes of `ordered_projection_outcomes` with their
    probabilities (chi-square)."""
    grads = 2 * (HEAD_KERNELS @ SHARED_KERNEL)[:, None] * HEAD_KERNELS
    if name == "pcgrad":
        method = keras_mtl.weighting.PCGrad(seed=seed, gradient_mode=gradient_mode)
    else:
        method = keras_mtl.weighting.GradVac(beta=0.0, seed=seed, gradient_mode=gradient_mode)
    outcomes = ordered_projection_outcomes(grads, project_self=name == "pcgrad")
    table, probabilities = np.array(list(outcomes)), np.array(list(outcomes.values()))
    assert len(table) == 8  # what makes the check sensitive to the orders
    weights = logged_weights_by_step(method, steps)
    distances = np.abs(weights[:, None, :] - table[None]).max(axis=2)
    nearest = distances.argmin(axis=1)
    assert distances.min(axis=1).max() < 1e-3, distances.min(axis=1).max()
    counts = np.bincount(nearest, minlength=len(table))
    expected = steps * probabilities
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    assert statistic < chi_square_quantile(len(table) - 1), (counts, expected)


# ------------------------------------------------------------------------ GradDrop


def check_graddrop(draws=300, seed=3, coordinates=40):
    """GradDrop keeps coordinate p's positive gradients with probability its sign
    purity `P_p`, independently across coordinates: per coordinate, the number of
    draws keeping the positive sign is Binomial(draws, P_p) (chi-square over the
    coordinates), and the number of coordinates keeping it per draw has variance
    `sum_p P_p (1 - P_p)` (chi-square on the sample variance)."""
    purity = np.linspace(0.1, 0.9, coordinates)
    grads = np.stack([0.6 * purity, 0.4 * purity, -(1 - purity)]).astype("float32")
    method = keras_mtl.weighting.GradDrop(leak=0.0, seed=seed)
    method.build((3,))
    losses = np.ones(3, "float32")
    # With leak 0 the combined gradient is the kept sign's sum: positive when kept.
    kept = np.stack([np.asarray(method.combine_gradients(grads, losses)[0]) > 0
                     for _ in range(draws)])
    reference = 0.5 * (1 + grads.astype("float64").sum(0) / np.abs(grads.astype("float64")).sum(0))
    np.testing.assert_allclose(reference, purity, rtol=1e-6)
    counts = kept.sum(axis=0)
    statistic = float(np.sum((counts - draws * purity) ** 2 / (draws * purity * (1 - purity))))
    assert statistic < chi_square_quantile(coordinates), (statistic, counts)
    dispersion = (draws - 1) * kept.sum(axis=1).var(ddof=1) / np.sum(purity * (1 - purity))
    assert (chi_square_quantile(draws - 1, upper=False) < dispersion
            < chi_square_quantile(draws - 1)), dispersion


# The checks by name, for the backends' test files.
CHECKS = {"rlw": check_rlw, "graddrop": check_graddrop,
          **{f"{name}-{mode}": functools.partial(check_task_orders, name, mode)
             for name in ("pcgrad", "gradvac") for mode in ("shared_parameters", "representation")}}
