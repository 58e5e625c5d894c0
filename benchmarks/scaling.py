"""Scaling in the number of tasks: train-step time and memory for K = 2 ... 40.

CelebA-like setting: K binary attributes (synthetic labels), an MLP trunk (512-256)
on 512 input features (say, a frozen image embedding), one logit per attribute
(a `Dense(1)` head each), binary cross-entropy, batch 128, Adam. Modes:

* equal weighting: one backward pass; its step time should stay flat in K.
* plain Keras `compile(loss={...})` + `fit` on the same model, for comparison.
* a gradient method on the shared parameters ("param-grad", MGDA and PCGrad): the
  K x P Jacobian, P the trunk's parameters. TensorFlow: K `tape.gradient` calls;
  JAX: one `jax.vjp` of `[objective, L_1..L_K, regularization]` and one pullback per
  entry (K + 2 gradients of every trainable variable).
* the same methods on the shared representation ("rep-grad"): K gradients of the
  (batch x 256) trunk output, combined, then one backward pass through the trunk.
  TensorFlow: K `tape.gradient` calls to the representation; JAX: `jax.jacrev`
  through the heads, then one `jax.vjp` pullback through the trunk.

Each contender keeps Keras' default `jit_compile` ("auto": no XLA on TensorFlow on a
CPU-only machine, XLA on JAX). The data pipeline is `tf.data` on both backends, as in
`benchmarks/overhead.py` (a JAX run needs TensorFlow installed too). All models train
one epoch per round, interleaved; times are medians.

Memory, per backend (a different quantity on each, so compare rows within one
backend only):

* TensorFlow, "peak MiB (transient)": the most that TensorFlow's CPU allocator held
  during one more epoch beyond what it held before (weights, optimizer state and
  cached data are not counted). It needs `TF_CPU_ALLOCATOR_USE_BFC=true` before
  TensorFlow starts, which running this file sets (imported after TensorFlow
  started, the column reads "n/a").
* JAX, "XLA temp MiB": `temp_size_in_bytes` of XLA's memory analysis of the train
  step compiled as Keras compiles it (`jax.jit(model.train_step, donate_argnums=0)`
  on the model's state and one batch): the buffer XLA reserves for the step's
  intermediates, beyond its arguments (state and batch) and its outputs (the new
  state, aliased to the donated old one). It is computed by the compiler, not
  measured while running; JAX reports no allocator statistics for CPU devices
  (`jax.devices()[0].memory_stats()` is None there).

    python -m benchmarks.scaling [--quick]
    KERAS_BACKEND=jax python -m benchmarks.scaling [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if __name__ == "__main__":
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_mtl  # noqa: E402
from benchmarks import interleaved_rounds, keras_epoch_runner, load_weighting_methods, markdown_table, summarize  # noqa: E402

# mode label -> (weighting name, gradient mode or None); "plain keras" is no keras_mtl.
MODES = {
    "plain keras": (None, None),
    "equal": ("equal", None),
    "MGDA param-grad": ("mgda", "shared_parameters"),
    "MGDA rep-grad": ("mgda", "representation"),
    "PCGrad param-grad": ("pcgrad", "shared_parameters"),
    "PCGrad rep-grad": ("pcgrad", "representation"),
}
QUICK_MODES = ("plain keras", "equal", "MGDA param-grad", "MGDA rep-grad")


def celeba_like(num_tasks, examples, batch_size, features=512, units=(512, 256), seed=0):
    """`(model, dataset)`: a hard-sharing MLP with `num_tasks` binary heads and
    synthetic data (labels as one (N, K) tensor, split by each task's label_slice)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, features)).astype("float32")
    y = (rng.uniform(size=(examples, num_tasks)) < 0.3).astype("float32")
    tasks = [keras_mtl.Task(f"attribute{k}", head=1, label_slice=(k, k + 1),
                            loss=keras.losses.BinaryCrossentropy(from_logits=True))
             for k in range(num_tasks)]
    model = keras_mtl.build(
        "hard_sharing", tasks, backbone=lambda shape: keras_mtl.backbones.mlp(shape, units=units),
        input_shape=(features,))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)
    return model, data.cache().prefetch(2)


def _weighting(name, gradient_mode):
    weighting = keras_mtl.weighting.get(name)
    if gradient_mode is not None:
        weighting.gradient_mode = gradient_mode
    return weighting


def _allocator_stats_work():
    # Without the BFC allocator TensorFlow's CPU memory stats stay at a constant.
    return os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true")


def memory_column():
    """The memory column's name on this backend (the module docstring says what it is)."""
    return "XLA temp MiB" if keras.backend.backend() == "jax" else "peak MiB (transient)"


def transient_memory(model, dataset):
    """MiB of the memory column for `model` (trained at least one step, so that its
    optimizer is built) on `dataset`, or None where TensorFlow's allocator keeps no
    statistics."""
    if keras.backend.backend() == "jax":
        import jax

        spec = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
        state = tuple([spec(v) for v in variables] for variables in (
            model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
            model.metrics_variables))
        batch = jax.tree.map(spec, next(dataset.as_numpy_iterator()))
        compiled = jax.jit(model.train_step, donate_argnums=0).lower(state, batch).compile()
        return compiled.memory_analysis().temp_size_in_bytes / 2**20
    if not _allocator_stats_work():
        return None
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - before) / 2**20


def run(quick=False, tasks=None, modes=None, steps=None, batch_size=128, rounds=None,
        extra_rounds=None, log=print):
    """Returns rows `(K, mode, steps/s, ms/step, step time vs equal K=2, step time
    vs equal same K, MiB of the memory column or None, rounds, note)`."""
    load_weighting_methods()
    tasks = tasks or ((2, 10, 20) if quick else (2, 5, 10, 20, 40))
    modes = modes or (QUICK_MODES if quick else tuple(MODES))
    steps = steps or (12 if quick else 32)
    rounds = rounds or (3 if quick else 5)
    extra_rounds = (2 if quick else 4) if extra_rounds is None else extra_rounds
    available = keras_mtl.weighting.available()
    runners, models, datasets, notes = {}, {}, {}, {}
    for k in tasks:
        for mode in modes:
            name, gradient_mode = MODES[mode]
            if name is not None and name not in available:
                notes[(k, mode)] = f"'{name}' not in keras_mtl.weighting.available()"
                continue
            keras.utils.set_random_seed(0)
            model, dataset = celeba_like(k, steps * batch_size, batch_size)
            if name is None:
                names = model.task_names
                model = keras.Model(model.inputs, model.outputs)
                model.compile(optimizer="adam", loss={n: keras.losses.BinaryCrossentropy(from_logits=True)
                                                      for n in names})
                dataset = dataset.map(lambda x, y: (x, {n: y[:, i:i + 1] for i, n in enumerate(names)}))
                dataset = dataset.cache()
            else:
                model.compile(optimizer="adam", weighting=_weighting(name, gradient_mode))
            runners[(k, mode)] = keras_epoch_runner(model, dataset)
            models[(k, mode)], datasets[(k, mode)] = model, dataset
        if log:
            log(f"scaling: K={k} built")
    reference = (tasks[0], "equal") if (tasks[0], "equal") in runners else next(iter(runners))
    samples = summarize(interleaved_rounds(runners, reference, rounds, extra_rounds=extra_rounds))

    rows = []
    for k in tasks:
        for mode in modes:
            if (k, mode) in notes:
                rows.append((k, mode, None, None, None, None, None, 0, notes[(k, mode)]))
                continue
            sps, ratio, _, _, n = samples[(k, mode)]
            equal = samples.get((k, "equal"))
            peak = transient_memory(models[(k, mode)], datasets[(k, mode)])
            rows.append((k, mode, sps, 1000.0 / sps, 1.0 / ratio,
                         equal[1] / ratio if equal else None, peak, n, ""))
    return rows


def report(rows):
    header = ["K", "mode", "steps/s", "ms/step", "step time / equal K=2", "step time / equal same K",
              memory_column(), "rounds"]
    show = lambda v: "n/a" if v is None else v
    table = [(k, mode + (f" ({note})" if note else ""), show(sps), show(ms), show(vs2), show(vsk),
              show(peak), n) for k, mode, sps, ms, vs2, vsk, peak, n, note in rows]
    return markdown_table(header, table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 2, 10, 20; plain Keras, equal and MGDA only")
    parser.add_argument("--tasks", help="comma-separated task counts (default 2,5,10,20,40)")
    args = parser.parse_args(argv)
    tasks = tuple(int(k) for k in args.tasks.split(",")) if args.tasks else None
    rows = run(quick=args.quick, tasks=tasks)
    print(f"\n## Scaling in the number of tasks (CelebA-like MLP, batch 128, "
          f"{keras.backend.backend()} backend)\n")
    print(report(rows))
    return rows


if __name__ == "__main__":
    main()
