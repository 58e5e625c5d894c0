"""Speed of the gradient-manipulation weighting methods, and of the ways to get the
K x P matrix of per-task gradients.

1. Train steps: for K tasks on a hard-sharing MLP (64 inputs) and on the "conv"
   backbone (32x32x3 images), steps/s of each method as a ratio to equal weighting
   in the same run (median epoch time after a warm-up epoch; higher is better,
   1.0 means no overhead), in "shared_parameters" and "representation" mode.
   "pcgrad+fused" (TensorFlow only) is PCGrad with the train-step change proposed
   below: each task's gradient call also returns its head's gradients, so no
   separate backward pass through the heads for the task-specific variables.
2. Micro-benchmark (TensorFlow only): one forward pass plus the K x P matrix of the
   shared variables, by K `tape.gradient` calls on a persistent tape (what the train
   step does), by `tape.jacobian` (pfor, vectorised) and by `tape.jacobian` without
   pfor (a while loop), against one plain gradient of the summed loss (fastest of
   five timed blocks).

On the JAX backend (`KERAS_BACKEND=jax`) part 1 times keras_mtl's JAX trainer
(jit-compiled steps; per-task gradients by one `jax.vjp` and a pullback per task in
"shared_parameters" mode, by `jax.jacrev` through the heads in "representation" mode,
see `keras_mtl/backend/jax/trainer.py`).

    python benchmarks/gradient_methods.py [--quick]
"""

import argparse
import os
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_mtl  # noqa: E402
from keras_mtl.backend.common import combine_blocks  # noqa: E402
from keras_mtl.weighting import (aligned_mtl, cagrad, graddrop, gradvac, imtl, mgda,  # noqa: E402,F401
                                 nash_mtl, pcgrad)

TENSORFLOW = keras.backend.backend() == "tensorflow"
if TENSORFLOW:
    import tensorflow as tf

METHODS = ("mgda", "pcgrad", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "gradvac", "graddrop")
_CLASSES = {"mgda": mgda.MGDA, "pcgrad": pcgrad.PCGrad, "cagrad": cagrad.CAGrad, "imtl": imtl.IMTL,
            "nash_mtl": nash_mtl.NashMTL, "aligned_mtl": aligned_mtl.AlignedMTL,
            "gradvac": gradvac.GradVac, "graddrop": graddrop.GradDrop}


def flatten_gradients(grads, sources):
    """Concatenates gradients into one vector; a missing gradient counts as zeros."""
    return ops.concatenate([
        ops.reshape(g if g is not None else ops.zeros_like(s), (-1,))
        for g, s in zip(grads, sources)
    ])


class _EpochTimer(keras.callbacks.Callback):
    """Wall-clock and CPU seconds (this process, all threads) of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds, self.cpu_seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start[0])
        self.cpu_seconds.append(time.process_time() - self._start[1])


def _setting(name, k, n):
    rng = np.random.default_rng(0)
    if name == "conv":
        x = rng.uniform(size=(n, 32, 32, 3)).astype("float32")
        backbone, shape = "conv", (32, 32, 3)
        head = lambda units: [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(units)]
    else:
        x = rng.normal(size=(n, 64)).astype("float32")
        backbone, shape = "mlp", (64,)
        head = lambda units: [keras.layers.Dense(units)]
    y = {f"t{i}": (rng.integers(0, 5, n) if i % 2 == 0 else rng.normal(size=(n, 1)).astype("float32"))
         for i in range(k)}

    def loss(i):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True) if i % 2 == 0 else "mse"

    def build():
        tasks = [keras_mtl.Task(f"t{i}", head=head(5 if i % 2 == 0 else 1), loss=loss(i)) for i in range(k)]
        return keras_mtl.build("hard_sharing", tasks, backbone=backbone, input_shape=shape)

    return x, y, build, {f"t{i}": keras.losses.get(loss(i)) for i in range(k)}


def fused_gradient_method_gradients(self, tape, task_losses, present, scaled_per_task, scaled_rest,
                                    scaled_regularization, variables, representation=None):
    """`MultiTaskModel._gradient_method_gradients` with one gradient call per task
    for both that task's per-variable blocks and its own variables (proposed change;
    one replica, no loss scale)."""
    shared_ids = {id(v) for v in self.shared_variables}
    shared = [v for v in variables if id(v) in shared_ids]
    sources = shared if representation is None else representation
    per_task, by_id = [], {}
    for name, loss in zip(self.task_names, scaled_per_task):
        own = list(self.task_variables[name])
        grads = tape.gradient(loss, list(sources) + own,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        per_task.append(grads[:len(sources)])
        by_id.update(zip((id(v) for v in own), grads[len(sources):]))
    blocks = [ops.stack(grads) for grads in zip(*per_task)]
    combined, weights, _ = combine_blocks(self.weighting, blocks, task_losses, present)
    if representation is not None:
        combined = tape.gradient(representation, shared, output_gradients=combined)
    by_id.update(zip((id(v) for v in shared), combined))
    rest = [v for v in variables if id(v) not in by_id]
    if rest:
        by_id.update(zip((id(v) for v in rest), tape.gradient(scaled_rest, rest)))
    if self.losses:
        regularization = tape.gradient(scaled_regularization, variables)
        for v, r in zip(variables, regularization):
            if r is not None and id(v) not in {id(u) for u in rest}:
                by_id[id(v)] = by_id[id(v)] + r
    return [by_id[id(v)] for v in variables], weights, None


def _compiled(build, weighting, fused=False):
    keras.utils.set_random_seed(0)
    model = build()
    if fused:
        model._gradient_method_gradients = types.MethodType(fused_gradient_method_gradients, model)
    model.compile(optimizer="adam", weighting=weighting)
    return model


def _interleaved_steps_per_second(models, x, y, batch, rounds, warmup=2):
    """Steps per second and per CPU-second of each model: one epoch per model per
    round, round-robin, so that a drifting machine load hits all models alike, and
    the fastest epoch after `warmup` rounds (tracing, then a few slower epochs). On
    a machine shared with other jobs the minimum is the estimate least disturbed by
    them, and CPU time (which they do not add to) the steadier measure."""
    timers = [_EpochTimer() for _ in models]
    for _ in range(rounds + warmup):
        for model, timer in zip(models, timers):
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    steps = int(np.ceil(len(x) / batch))
    wall = np.array([t.seconds[warmup:] for t in timers]).min(axis=1)
    cpu = np.array([t.cpu_seconds[warmup:] for t in timers]).min(axis=1)
    return steps / wall, steps / cpu


def _check_fused_equals_current(build, x, y):
    """The proposed train-step change gives the same training as the current one."""
    models = [_compiled(build, pcgrad.PCGrad(seed=0), fused=f) for f in (False, True)]
    for m in models:
        m.compile(optimizer=keras.optimizers.SGD(0.1), weighting=pcgrad.PCGrad(seed=0))
        m.fit(x[:32], {k: v[:32] for k, v in y.items()}, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(models[0].trainable_variables, models[1].trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)


def train_steps(settings, n, batch, rounds):
    """`settings`: (backbone, K, modes) triples; `n`: examples by backbone."""
    rows = []
    for setting, k, modes in settings:
        x, y, build, _ = _setting(setting, k, n[setting])
        runs = [("equal", "-", _compiled(build, "equal"))]
        runs += [(name, mode, _compiled(build, _CLASSES[name](gradient_mode=mode)))
                 for mode in modes for name in METHODS]
        if TENSORFLOW:
            _check_fused_equals_current(build, x, y)
            runs.append(("pcgrad+fused", "shared_parameters",
                         _compiled(build, pcgrad.PCGrad(), fused=True)))
        wall, cpu = _interleaved_steps_per_second([m for _, _, m in runs], x, y, batch, rounds)
        rows += [(setting, k, name, mode, w, w / wall[0], c / cpu[0])
                 for (name, mode, _), w, c in zip(runs, wall, cpu)]
        print(f"# done {setting} K={k}", flush=True)
    print(f"# train steps on the {keras.backend.backend()} backend")
    print(f"{'model':5} {'K':>3} {'method':13} {'mode':18} {'steps/s':>8} {'vs equal':>9} {'cpu vs equal':>13}")
    for setting, k, name, mode, sps, ratio, cpu_ratio in rows:
        print(f"{setting:5} {k:3d} {name:13} {mode:18} {sps:8.1f} {ratio:9.3f} {cpu_ratio:13.3f}")
    return rows


def _time(fn, *args, repeats):
    fn(*args)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*args)
        times.append((time.perf_counter() - start) / repeats)
    return float(np.min(times))


def jacobians(settings, batch, repeats):
    """ms per call of forward + K x P matrix, each way; checks that they agree."""
    rows = []
    for setting, k in settings:
        x, y, build, losses = _setting(setting, k, batch)
        model = build()
        shared = model.shared_variables

        def losses_under(tape):
            y_pred = model(x, training=True)
            return ops.stack([ops.mean(losses[n](y[n], y_pred[n])) for n in model.task_names])

        @tf.function
        def plain():
            with tf.GradientTape() as tape:
                total = ops.sum(losses_under(tape))
            return flatten_gradients(tape.gradient(total, shared), shared)

        @tf.function
        def gradient_calls():
            with tf.GradientTape(persistent=True) as tape:
                losses = losses_under(tape)
                per_task = [losses[i] for i in range(k)]
            return ops.stack([flatten_gradients(tape.gradient(l, shared), shared) for l in per_task])

        def jacobian(pfor):
            @tf.function
            def run():
                with tf.GradientTape() as tape:
                    losses = losses_under(tape)
                parts = tape.jacobian(losses, shared, experimental_use_pfor=pfor)
                return ops.concatenate([ops.reshape(p, (k, -1)) for p in parts], axis=1)
            return run

        variants = {"plain gradient (1 row)": plain, "K gradient calls": gradient_calls,
                    "tape.jacobian pfor": jacobian(True), "tape.jacobian while": jacobian(False)}
        reference = gradient_calls().numpy()
        for label in ("tape.jacobian pfor", "tape.jacobian while"):
            np.testing.assert_allclose(variants[label]().numpy(), reference, rtol=1e-3, atol=1e-5)
        base = None
        for label, fn in variants.items():
            ms = 1e3 * _time(fn, repeats=repeats)
            base = base or ms
            rows.append((setting, k, label, ms, ms / base))
    print(f"{'model':5} {'K':>3} {'K x P matrix by':24} {'ms/call':>8} {'vs plain':>9}")
    for setting, k, label, ms, ratio in rows:
        print(f"{setting:5} {k:3d} {label:24} {ms:8.2f} {ratio:9.2f}")
    return rows


def run(quick=False, batch=32):
    both = ["shared_parameters", "representation"]
    if quick:
        settings = [("mlp", 2, both[:1]), ("mlp", 3, both), ("mlp", 10, both[:1]), ("conv", 3, both)]
        train_steps(settings, n={"mlp": 512, "conv": 128}, batch=batch, rounds=3)
        if TENSORFLOW:
            jacobians([("mlp", 3), ("conv", 3)], batch, repeats=10)
    else:
        settings = [(s, k, both) for s in ("mlp", "conv") for k in (2, 3, 10)]
        train_steps(settings, n={"mlp": 2048, "conv": 512}, batch=batch, rounds=8)
        if TENSORFLOW:
            jacobians([(s, k) for s in ("mlp", "conv") for k in (2, 3, 10)], batch, repeats=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer settings, smaller data (< 5 min)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    run(quick=args.quick, batch=args.batch)
