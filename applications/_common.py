"""What the applications share: the data folder, flags, evaluation, repeated runs, printing.

Every application has `main(argv=None)`, takes the flags of `parser`, defines each
row of its comparison as a function `seed -> {metric: value}`, and hands them to
`compare`, which runs them with `--seed` (or over `--seeds N` seeds with
`keras_mtl.experiments`) and prints the table.
"""

import argparse
import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_mtl import experiments
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


def parser(description, epochs, batch_size, learning_rate=1e-3, data=True):
    """An argument parser with the flags every application has (`--data` only for
    applications that read a data folder). An application may define one of them
    again (its own default or meaning); its definition replaces the common one."""
    p = argparse.ArgumentParser(description=description, conflict_handler="resolve")
    if data:
        p.add_argument("--data", help="the data set's folder (default: ../shared/data/<name>)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--learning-rate", type=float, default=learning_rate)
    p.add_argument("--seed", type=int, default=0, help="the (first) seed")
    p.add_argument("--seeds", type=int, default=1,
                   help="run every row with N seeds (--seed, --seed+1, ...) and print the mean +- std, "
                        "delta_m's spread and a paired t-test against the baseline")
    p.add_argument("--results", help="a JSON file that keeps every finished run (a later call with the "
                                     "same flags runs only what is missing); a CSV and delta_m plots "
                                     "(PNG) are written beside it")
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


def fit_timed(model, train, epochs, **fit_options):
    """`model.fit`, and the training milliseconds per step: the median over epochs after
    the first (which includes tracing), or the first when there is only one. An epoch
    has `steps_per_epoch` steps when given (e.g. for a repeated dataset), else the
    dataset's length."""
    seconds, started = [], []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(time.perf_counter() - started[-1]))
    history = model.fit(train, epochs=epochs, callbacks=[timer], **fit_options)
    steps = fit_options.get("steps_per_epoch") or int(train.cardinality())
    timed = sorted(seconds[1:] or seconds)
    return history, 1000.0 * timed[len(timed) // 2] / steps


def interleaved_seconds(functions, rounds=7, warmup=1):
    """The median wall-clock seconds of each function's call, the functions called in
    turn (one call of each per round, after `warmup` untimed rounds), so that a
    machine's changing load falls on all of them alike and their ratios hold.

    Args:
        functions: `{name: function()}`.
        rounds: timed calls of each function.
        warmup: untimed rounds first (tracing, caches).

    Returns:
        `{name: median seconds}`.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    seconds = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - started)
    return {name: float(np.median(values)) for name, values in seconds.items()}


def print_results(title, results, lower_is_better, baseline="single_task", compared=None, shown=None):
    """Prints one row per model: its metrics ("-" where it has none), delta_m
    (`keras_mtl.evaluation.delta_m`, lower is better) against the `baseline` model,
    and its seconds (with `compare`: the run's wall time, data, training and evaluation).

    Args:
        results: dict from model name to `(metrics dict, seconds)`.
        lower_is_better: the names of the metrics where lower is better.
        baseline: the name of the model that delta_m compares with.
        compared: the metric names delta_m averages over (default: all of the
            baseline's).
        shown: the metric columns (default: every metric of any model).
    """
    names = shown or list(dict.fromkeys(n for metrics, _ in results.values() for n in metrics))
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


OUTPUT_FLAGS = ("seed", "seeds", "results", "verbose", "export", "plot", "figures")


def finished_run(args, configuration, seed):
    """The metrics of a run that an earlier call stored in `--results`."""
    return next(r["metrics"] for r in experiments.load(args.results)["runs"]
                if r["configuration"] == configuration and r["seed"] == seed)


def _settings(args, row_flags=()):
    """The flags that make runs comparable: all but the seeds, where outputs go, and
    `row_flags` (flags that only choose which rows run, each row named by its value)."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in OUTPUT_FLAGS + tuple(row_flags)}


def compare(args, title, runs, lower_is_better, baseline="single_task", compared=None, shown=None, row_flags=(),
            table=None):
    """Runs every row with each seed, prints the table and writes `--results`.

    With one seed (the default) the table is `print_results`'; with `--seeds N` it
    is `keras_mtl.experiments.format_table` (mean +- std over seeds, delta_m per
    seed against the baseline of the same seed, the paired t-test).

    Args:
        args: the parsed flags of `parser`.
        title: the table's title (the seeds are appended).
        runs: dict from row name to a function `seed -> {metric: value}` that
            trains and evaluates one model (Keras' random seed is set before).
        lower_is_better, compared, shown: as for `print_results`.
        row_flags: flags that only choose which rows run (e.g. the training-set
            sizes, when each row's name holds its size): left out of the settings
            stored with `--results`, so that a call with more rows extends the file.
        baseline: the row delta_m compares with, or a dict from row to its own
            baseline row (`keras_mtl.experiments.run`).
        table: a function `summary -> text` that prints the table instead (e.g. a
            narrower one).

    Returns:
        The summary of `keras_mtl.experiments.summarize`.
    """
    seeds = list(range(args.seed, args.seed + args.seeds))
    stored = experiments.run(runs, seeds, path=args.results, settings=_settings(args, row_flags),
                             log=print if len(seeds) > 1 or args.results else None)
    rows = {name: {r["seed"]: r for r in stored["runs"] if r["configuration"] == name} for name in runs}
    first_baseline = baseline if isinstance(baseline, str) else next(iter(baseline.values()))
    compared = list(compared or rows[first_baseline][seeds[0]]["metrics"])
    higher_is_better = {n: n not in lower_is_better for n in compared}
    summary = experiments.summarize(stored["runs"], baseline, higher_is_better, seeds=seeds,
                                    configurations=list(runs))
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    if table is not None:
        print(f"\n{title}; {seed_text}\n" + table(summary))
    elif len(seeds) == 1 and isinstance(baseline, str):
        print_results(f"{title}; {seed_text}",
                      {name: (by_seed[seeds[0]]["metrics"], by_seed[seeds[0]]["seconds"])
                       for name, by_seed in rows.items()},
                      lower_is_better, baseline=baseline, compared=compared, shown=shown)
    else:
        print(f"\n{title}; {seed_text}\n" + experiments.format_table(summary, metrics=shown))
        baselines = baseline if isinstance(baseline, str) else ", ".join(sorted(set(baseline.values())))
        print(f"(lower is better for: {', '.join(sorted(lower_is_better)) or 'none'}; baseline: {baselines})")
    if args.results:
        stored["summary"] = summary
        experiments.save(args.results, stored)
        stem = os.path.splitext(args.results)[0]
        experiments.write_csv(stored, f"{stem}.csv")
        written = [f"{stem}.csv"]
        if len(runs) > 1:
            from keras_mtl import plot

            against = baseline if isinstance(baseline, str) else "each baseline"
            plot.delta_m(summary, f"{stem}_delta_m.png", title=f"delta_m vs {against}")
            plot.metric_changes(summary, f"{stem}_metric_changes.png", title=f"Change per metric vs {against}")
            written += [f"{stem}_delta_m.png", f"{stem}_metric_changes.png"]
        print(f"Results: {args.results}; wrote {', '.join(written)}")
    return summary
