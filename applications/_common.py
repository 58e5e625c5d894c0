"""What the real-data applications share: the data folder, flags, delta_m, printing."""

import argparse
import os
import time
from pathlib import Path

import keras


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


def delta_m(metrics, baseline, lower_is_better):
    """Average relative gain over the single-task baseline, in percent.

    `delta_m = 100 / T * sum_i (-1)^{l_i} (M_i - B_i) / B_i`, with `l_i = 1` when a
    lower value of metric i is better (Maninis et al., "Attentive Single-Tasking of
    Multiple Tasks", CVPR 2019; Vandenhende et al., TPAMI 2021). Positive is better.

    Args:
        metrics, baseline: dicts from metric name to value; the sum runs over the
            baseline's metrics, which `metrics` must all have.
        lower_is_better: the names of the metrics where lower is better.
    """
    missing = set(baseline) - set(metrics)
    if missing:
        raise ValueError(f"metrics lack the baseline's {sorted(missing)}.")
    gains = [(metrics[k] - baseline[k]) / baseline[k] * (-1 if k in lower_is_better else 1)
             for k in baseline]
    return 100.0 * sum(gains) / len(gains)


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


def fit(model, train, epochs, validation=None):
    """Trains with one log line per epoch; returns the seconds taken."""
    start = time.time()
    model.fit(train, epochs=epochs, validation_data=validation, verbose=2)
    return time.time() - start


def print_results(title, results, lower_is_better, baseline="single_task"):
    """Prints one row per model: its metrics ("-" where it has none), delta_m over
    the `baseline` model's metrics, and its training seconds.

    Args:
        results: dict from model name to `(metrics dict, seconds)`.
    """
    names = list(dict.fromkeys(n for metrics, _ in results.values() for n in metrics))
    width = max(len(n) for n in results) + 2
    print(f"\n{title}")
    print("model".ljust(width) + "".join(f"{n:>16}" for n in names)
          + f"{'delta_m %':>11}{'seconds':>9}")
    for model_name, (metrics, seconds) in results.items():
        delta = delta_m(metrics, results[baseline][0], lower_is_better)
        print(model_name.ljust(width)
              + "".join(f"{metrics[n]:>16.4f}" if n in metrics else f"{'-':>16}" for n in names)
              + f"{delta:>11.2f}{seconds:>9.0f}")
    print(f"(lower is better for: {', '.join(sorted(lower_is_better)) or 'none'}; "
          f"delta_m over {baseline}'s metrics)")
