"""What the real-data applications share: the data folder, flags, evaluation, printing."""

import argparse
import os
import time
from pathlib import Path

import keras

from keras_mtl.evaluation import delta_m


def data_folder(name, given=None):
    """The folder of data set `name`: `given`, else `$KERAS_MTL_DATA/name`, else
    `../shared/data/name` beside the repository."""
    if given:
        return given
    root = os.environ.get("KERAS_MTL_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    folder = Path(root) / name
    if not folder.is_dir():
        raise SystemExit(f"No data folder {folder}: pass --data, or set KERAS_MTL_DATA.")
    return str(folder)


def parser(description, epochs, batch_size):
    """An argument parser with the flags every application has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", help="the data set's folder (default: ../shared/data/<name>)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    return p


def evaluate(model, dataset, metrics):
    """Computes metrics on a model's predictions, each task's mask applied.

    Args:
        model: a multi-task model (outputs by task name).
        dataset: batches of `(x, {task: y})` or `(x, {task: y}, {task: weight})`;
            a task's weight (mask) weighs its metrics.
        metrics: dict from a label to `(task name, keras.metrics.Metric)`.

    Returns:
        A dict from label to value.
    """
    for batch in dataset:
        x, y, weights = keras.utils.unpack_x_y_sample_weight(batch)
        predictions = model.predict_on_batch(x)
        for task, metric in metrics.values():
            metric.update_state(y[task], predictions[task],
                                None if weights is None else weights[task])
    return {label: float(metric.result()) for label, (_, metric) in metrics.items()}


def fit(model, train, epochs, validation=None, callbacks=()):
    """Trains, printing one short line per epoch; returns the seconds taken."""
    start = time.time()
    report = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
        f"  epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f} ({time.time() - start:.0f} s)",
        flush=True))
    model.fit(train, epochs=epochs, verbose=0, validation_data=validation,
              callbacks=[*callbacks, report])
    return time.time() - start


def print_results(title, results, lower_is_better, baseline="single_task", compared=None):
    """Prints one row per model: its metrics ("-" where it has none), delta_m
    (`keras_mtl.evaluation.delta_m`, lower is better) against the `baseline` model,
    and its training seconds.

    Args:
        results: dict from model name to `(metrics dict, seconds)`.
        lower_is_better: the names of the metrics where lower is better.
        baseline: the name of the model that delta_m compares with.
        compared: the metric names delta_m averages over (default: all of the
            baseline's).
    """
    names = list(dict.fromkeys(n for metrics, _ in results.values() for n in metrics))
    compared = list(compared or results[baseline][0])
    widths = [max(len(n), 7) + 2 for n in names]
    first = max(len(n) for n in results) + 2
    print(f"\n{title}")
    print("model".ljust(first) + "".join(n.rjust(w) for n, w in zip(names, widths))
          + f"{'delta_m %':>11}{'seconds':>9}")
    for model_name, (metrics, seconds) in results.items():
        delta = delta_m(metrics, results[baseline][0],
                        {n: n not in lower_is_better for n in compared})
        cells = (f"{metrics[n]:.4f}" if n in metrics else "-" for n in names)
        print(model_name.ljust(first) + "".join(c.rjust(w) for c, w in zip(cells, widths))
              + f"{delta:>11.2f}{seconds:>9.0f}")
    print(f"(lower is better for: {', '.join(sorted(lower_is_better)) or 'none'}; delta_m: mean "
          f"relative difference from {baseline} over {', '.join(compared)}; negative = better)")
