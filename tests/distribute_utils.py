"""Shared by the distribution tests and their subprocesses: small models of every
architecture, masked data whose labels of task b are split unevenly between
replicas, and a training run that returns the whole training state.

The runs are in float64. One replica and two sum the batch in different orders,
so their float32 results differ by rounding, and a training run is not a
continuous function of rounding: a pre-activation on either side of 0 switches a
ReLU (and the max-pooling choice after it) on or off, and Adam's first steps move
a weight by about the learning rate whatever the size of its gradient. In float32
one such switch in MTAN makes replicas differ by 1e-2 on some CPUs and not on
others. In float64 rounding is 1e-16 and the runs agree to about 1e-15 on any
CPU, so the comparison tests the arithmetic of distribution, not the CPU's
kernels."""

import keras
import numpy as np
import tensorflow as tf

import keras_mtl
from keras_mtl import weighting as w


def _tasks(names=("a", "b", "c")):
    specs = {"a": dict(head=3, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
             "b": dict(head=1, loss="mse"),
             "c": dict(head=2, loss="mse")}
    return [keras_mtl.Task(n, **specs[n]) for n in names]


def build(architecture):
    if architecture == "mtan":
        return keras_mtl.build("mtan", _tasks(("a", "b")), input_shape=(8, 8, 1), filters=(4, 4))
    options = {"split": {"split_at": 1}, "mmoe": {"num_experts": 2},
               "cgc": {"num_task_experts": 1}, "ple": {"num_task_experts": 1}}.get(architecture, {})
    return keras_mtl.build(architecture, _tasks(), backbone=lambda s: keras_mtl.backbones.mlp(s, units=(16, 8)),
                           input_shape=(8,), **options)


def data(architecture, n=48, batch_size=16):
    rng = np.random.default_rng(1)
    if architecture == "mtan":
        x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
        y = {"a": rng.integers(0, 3, (n, 8, 8)), "b": rng.normal(size=(n, 8, 8, 1)).astype("float32")}
    else:
        x = rng.normal(size=(n, 8)).astype("float32")
        y = {"a": rng.integers(0, 3, n), "b": rng.normal(size=(n, 1)).astype("float32"),
             "c": rng.normal(size=(n, 2)).astype("float32")}
    # Task b is labelled in 5 of every 16 examples, all in the first replica's half of
    # each global batch; the last batch has no label for it at all.
    mask = ((np.arange(n) % 16) < 5) & (np.arange(n) < 32)
    # Per-example masks, shaped to broadcast against per-pixel losses.
    shape = (n, 1, 1) if architecture == "mtan" else (n,)
    weights = {name: np.ones(shape, "float32") for name in y}
    weights["b"] = mask.astype("float32").reshape(shape)
    return tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(batch_size)


def _gradient_cases():
    cases = {}
    for name, make in [("mgda", w.MGDA), ("pcgrad", lambda **k: w.PCGrad(seed=3, **k)),
                       ("cagrad", w.CAGrad), ("imtl", w.IMTL), ("nash_mtl", w.NashMTL),
                       ("aligned_mtl", w.AlignedMTL), ("gradvac", lambda **k: w.GradVac(seed=3, **k)),
                       ("graddrop", lambda **k: w.GradDrop(seed=3, **k))]:
        for mode in ("shared_parameters", "representation"):
            cases[f"{name}/{mode}"] = lambda make=make, mode=mode: make(gradient_mode=mode)
    return cases


# Every weighting method (the gradient methods in both modes), by name.
CASES = {
    "equal": lambda: "equal",
    "fixed": lambda: w.Fixed([0.3, 2.0, 1.0]),
    "dwa": lambda: w.DWA(),
    "uncertainty": lambda: w.Uncertainty(),
    "gradnorm": lambda: w.GradNorm(),
    "dtp": lambda: w.DTP({"a": "accuracy"}),
    "rlw": lambda: w.RLW(seed=3),
    "gls": lambda: w.GLS(),
    "famo": lambda: w.FAMO(),
    **_gradient_cases(),
}


def run(strategy, architecture, case):
    """Trains 3 epochs of 3 global batches in float64; returns `(state, logs)`,
    `state` every variable of the model, its optimizers and its weighting method."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        return _run(strategy, architecture, case)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def _run(strategy, architecture, case):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build(architecture)
        model.compile(optimizer=keras.optimizers.Adam(0.01), task_optimizer=keras.optimizers.SGD(0.1),
                      weighting=CASES[case]())
    logs = model.fit(data(architecture), epochs=3, shuffle=False, verbose=0).history
    state = [v.numpy() for v in model.variables + model.optimizer.variables + model.weighting.variables]
    return state, logs


def run_mixed(strategy, architecture, case, steps=2):
    """Trains `steps` global batches under the mixed_float16 policy (a loss scale of
    2**15) with SGD, whose changes are proportional to the gradients; returns the
    model's variables before and after."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build(architecture)
            model.compile(optimizer=keras.optimizers.SGD(0.1),
                          task_optimizer=keras.optimizers.SGD(0.1), weighting=CASES[case]())
        before = [v.numpy() for v in model.variables]
        model.fit(data(architecture).take(steps), epochs=1, shuffle=False, verbose=0)
        return before, [v.numpy() for v in model.variables]
    finally:
        keras.config.set_dtype_policy(policy)


def differences(state1, logs1, state2, logs2):
    """The largest absolute difference of the states and relative one of the logs."""
    assert len(state1) == len(state2) and sorted(logs1) == sorted(logs2)
    state = max(float(np.abs(a - b).max()) for a, b in zip(state1, state2))
    logs = max(float(np.max(np.abs(np.subtract(logs1[k], logs2[k])) / (1 + np.abs(logs1[k]))))
               for k in logs1)
    return state, logs
