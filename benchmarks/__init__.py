"""Benchmarks of keras_mtl: overhead vs plain Keras, speed and agreement vs LibMTL,
scaling in the number of tasks.

    python -m benchmarks [--quick]

Machines running these are often shared, so absolute times mean little: every
benchmark times its contenders in interleaved rounds (one epoch of each, in a
rotating order) and reports each ratio as the median of the ratios measured in the
same round. Rows whose ratio still varies a lot get extra rounds. Ratios are given
by wall-clock time and by the process's CPU time (user + system, all threads),
which other processes on a loaded machine disturb less.
"""

import importlib
import pkgutil
import time

import numpy as np

# A row gets extra rounds while the interquartile range of its per-round ratios
# exceeds this fraction of their median.
NOISY_SPREAD = 0.10


def relative_spread(values):
    """Interquartile range divided by the median."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float((q3 - q1) / median) if median else float("inf")


def interleaved_rounds(runners, reference, rounds, warmup=1, extra_rounds=0, log=None):
    """Times contenders in interleaved rounds.

    Args:
        runners: dict label -> callable running one epoch and returning
            `(steps, wall_seconds, cpu_seconds)`.
        reference: the label that ratios are taken against (in `runners`).
        rounds: timed rounds for every contender.
        warmup: untimed epochs of each contender first (tracing, XLA, caches).
        extra_rounds: at most this many further rounds, each for the contenders
            whose ratio is noisier than `NOISY_SPREAD`, with the reference.
        log: optional callable taking a progress string.

    Returns:
        dict label -> `{"steps_per_second": [...], "ratio": [...], "cpu_ratio": [...]}`,
        one entry per round the label took part in: wall-clock steps/s, and the
        ratio of the reference's time per step to this one's in the same round, by
        wall-clock and by CPU time (higher is faster).
    """
    labels = list(runners)
    for label in labels:
        for _ in range(warmup):
            runners[label]()
        if log:
            log(f"warmed up {label}")
    samples = {label: {"steps_per_second": [], "ratio": [], "cpu_ratio": []} for label in labels}

    def one_round(participants, shift):
        order = participants[shift % len(participants):] + participants[:shift % len(participants)]
        wall, cpu = {}, {}
        for label in order:
            steps, wall_seconds, cpu_seconds = runners[label]()
            wall[label], cpu[label] = steps / wall_seconds, steps / cpu_seconds
        for label in participants:
            samples[label]["steps_per_second"].append(wall[label])
            samples[label]["ratio"].append(wall[label] / wall[reference])
            samples[label]["cpu_ratio"].append(cpu[label] / cpu[reference])

    for r in range(rounds):
        one_round(labels, r)
    for r in range(extra_rounds):
        noisy = [l for l in labels if l != reference
                 and relative_spread(samples[l]["ratio"]) > NOISY_SPREAD]
        if not noisy:
            break
        if log:
            log(f"extra round for noisy rows: {noisy}")
        one_round([reference] + noisy, rounds + r)
    return samples


def summarize(samples):
    """dict label -> `(median steps/s, median ratio, ratio spread, median CPU-time
    ratio, rounds)`."""
    return {
        label: (float(np.median(s["steps_per_second"])), float(np.median(s["ratio"])),
                relative_spread(s["ratio"]), float(np.median(s["cpu_ratio"])), len(s["ratio"]))
        for label, s in samples.items()
    }


def markdown_table(header, rows):
    """A GitHub markdown table; floats get 3 significant decimals."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def keras_epoch_runner(model, dataset):
    """A runner for `interleaved_rounds`: one `fit` epoch of `model` on `dataset`
    (a finite batched `tf.data.Dataset`), timed from epoch begin to epoch end."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = (time.perf_counter() - self.start[0],
                            time.process_time() - self.start[1])

    steps = int(dataset.cardinality())

    def run():
        timer = EpochTimer()
        model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
        return (steps,) + timer.seconds

    return run


def load_weighting_methods():
    """Imports every module of `keras_mtl.weighting`, so that methods whose files
    exist but that the package does not import yet are registered too. Returns
    `{module: error}` for modules that failed to import."""
    import keras_mtl.weighting

    failed = {}
    for module in pkgutil.iter_modules(keras_mtl.weighting.__path__):
        try:
            importlib.import_module(f"keras_mtl.weighting.{module.name}")
        except Exception as e:  # a method being written must not stop the benchmarks
            failed[module.name] = f"{type(e).__name__}: {e}"
    return failed
