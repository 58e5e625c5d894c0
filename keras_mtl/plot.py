"""Plots of training histories (needs matplotlib: `pip install keras_mtl[apps]`)."""


def _weight_series(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(
            f"history must be a keras.callbacks.History or its .history dict. Received: {history!r}")
    series = {key[:-len("_weight")]: list(values) for key, values in logs.items()
              if key.endswith("_weight")}
    # Validation logs repeat the training weights under "val_<task>_weight".
    series = {task: v for task, v in series.items()
              if not (task.startswith("val_") and task[len("val_"):] in series)}
    if not series:
        raise ValueError(
            f"history has no '<task>_weight' entries to plot. Keys: {sorted(logs)}")
    return series


def task_weights(history, path=None, title="Task weights", axes=None):
    """Plots each task's per-epoch mean weight (the `<task>_weight` logs).

    Args:
        history: the `keras.callbacks.History` returned by `fit`, or its
            `.history` dict.
        path: where to save the figure (any format matplotlib knows from the
            suffix), or None.
        title: the plot's title.
        axes: a matplotlib `Axes` to draw into (e.g. one panel of a grid);
            None for a new figure.

    Returns:
        The `matplotlib.figure.Figure` drawn into.

    Example: `keras_mtl.plot.task_weights(model.fit(x, y, epochs=20), "weights.png")`
    """
    series = _weight_series(history)
    axes = _axes(axes, (6, 4))
    for task, values in series.items():
        axes.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None,
                  label=task)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean task weight")
    axes.set_title(title)
    axes.legend(fontsize="small", ncols=2 if len(series) > 5 else 1)
    return _save(axes, path)


def task_weights_grid(histories, path=None, columns=2):
    """`task_weights` of several runs, one panel each, titled by run name.

    Args:
        histories: `{name: History or its .history dict}` (e.g. one per weighting method).
        path: where to save the figure, or None.
        columns: panels per row.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    if not isinstance(histories, dict) or not histories:
        raise ValueError(f"histories must be a non-empty dict {{name: history}}. Received: {histories!r}")
    columns = min(columns, len(histories))
    rows = -(-len(histories) // columns)
    figure = Figure(figsize=(6 * columns, 4 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (name, history) in zip(grid, histories.items()):
        task_weights(history, title=name, axes=axes)
    for axes in grid[len(histories):]:
        axes.set_visible(False)
    return _save(grid[0], path)


def _axes(axes, size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").add_subplot() if axes is None else axes


def _compared(summary, key):
    if not isinstance(summary, dict) or not summary:
        raise TypeError(f"summary must be the dict of keras_mtl.experiments.summarize. Received: {summary!r}")
    compared = {name: entry for name, entry in summary.items() if key in entry and not entry.get("is_baseline")}
    if not compared:
        raise ValueError(f"summary has no configuration with '{key}' besides the baseline "
                         "(pass a baseline to keras_mtl.experiments.run).")
    return compared


def delta_m(summary, path=None, title="delta_m vs the baseline", axes=None):
    """Bars of each configuration's mean delta_m with the seeds' standard deviation.

    Bars whose paired t-test interval excludes 0 (`exceeds_noise`) are drawn solid,
    the others hatched (within the seed noise). Lower is better.

    Args:
        summary: `keras_mtl.experiments.summarize` (or `run(...)["summary"]`); the
            baseline configuration is left out.
        path: where to save the figure (e.g. a `.png`), or None.
        title: the plot's title.
        axes: a matplotlib `Axes` to draw into; None for a new figure.

    Returns:
        The `matplotlib.figure.Figure` drawn into.

    Example: `keras_mtl.plot.delta_m(keras_mtl.experiments.run(...)["summary"], "delta_m.png")`
    """
    compared = _compared(summary, "delta_m")
    axes = _axes(axes, (max(5.0, 0.9 * len(compared) + 2), 4))
    names = list(compared)
    means = [compared[n]["delta_m"]["mean"] for n in names]
    spreads = [compared[n]["delta_m"]["std"] or 0.0 for n in names]
    bars = axes.bar(range(len(names)), means, yerr=spreads, capsize=4, color="tab:blue", edgecolor="black")
    for bar, name in zip(bars, names):
        if not compared[name]["delta_m"].get("exceeds_noise", False):
            bar.set_facecolor("white")
            bar.set_hatch("//")
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    seeds = sorted({len(compared[n]["delta_m"]["values"]) for n in names})
    axes.set_ylabel("delta_m, % (lower is better)")
    axes.set_title(f"{title}\nmean +- std over {'/'.join(map(str, seeds))} seeds\nhatched: within the seed noise",
                   fontsize="medium")
    return _save(axes, path)


def delta_m_trend(summary, series, path=None, xlabel="training examples", title="delta_m vs the baseline",
                  log_x=True, axes=None):
    """delta_m against a quantity (e.g. the training-set size): one line per series, the
    mean over seeds with the seeds' standard deviation as error bars. Points whose paired
    t-test interval excludes 0 (`exceeds_noise`) are filled, the others hollow. Lower is
    better.

    Args:
        summary: `keras_mtl.experiments.summarize` (or `run(...)["summary"]`).
        series: `{line label: {x value: configuration}}`, e.g.
            `{"equal": {250: "multi-task n=250", 1000: "multi-task n=1000"}}`;
            configurations without delta_m in the summary are left out.
        path: where to save the figure (e.g. a `.png`), or None.
        xlabel, title: the axis label and the plot's title.
        log_x: a logarithmic x axis (for sizes that double).
        axes: a matplotlib `Axes` to draw into; None for a new figure.

    Returns:
        The `matplotlib.figure.Figure` drawn into.
    """
    if not isinstance(series, dict) or not series:
        raise ValueError(f"series must be a non-empty dict {{label: {{x: configuration}}}}. Received: {series!r}")
    compared = _compared(summary, "delta_m")
    axes = _axes(axes, (6, 4))
    drawn, seeds = 0, set()
    for i, (label, points) in enumerate(series.items()):
        points = sorted((x, compared[name]["delta_m"]) for x, name in points.items() if name in compared)
        if not points:
            continue
        colour = f"C{i}"
        xs = [x for x, _ in points]
        axes.errorbar(xs, [d["mean"] for _, d in points], yerr=[d["std"] or 0.0 for _, d in points],
                      color=colour, capsize=4, marker="none", label=label)
        for x, d in points:
            axes.plot([x], [d["mean"]], "o", color=colour,
                      markerfacecolor=colour if d.get("exceeds_noise", False) else "white")
            seeds.add(len(d["values"]))
        drawn += 1
    if not drawn:
        raise ValueError(f"No configuration of series {series!r} has delta_m in the summary.")
    axes.axhline(0.0, color="black", linewidth=0.8)
    if log_x:
        axes.set_xscale("log")
        ticks = sorted({x for points in series.values() for x in points})
        axes.set_xticks(ticks, [str(x) for x in ticks])
        axes.minorticks_off()
    axes.set_xlabel(xlabel)
    axes.set_ylabel("delta_m, % (lower is better)")
    axes.set_title(f"{title}\nmean +- std over {'/'.join(map(str, sorted(seeds)))} seeds; "
                   "hollow: within the seed noise", fontsize="medium")
    axes.legend(fontsize="small")
    return _save(axes, path)


def metric_changes(summary, path=None, title="Change per metric vs the baseline", axes=None):
    """Grouped bars: for each metric, each configuration's mean relative change from
    the baseline of the same seed, in % with delta_m's sign (negative is better),
    with the seeds' standard deviation.

    Args: as for `delta_m`.

    Returns:
        The `matplotlib.figure.Figure` drawn into.
    """
    import numpy as np

    compared = _compared(summary, "metric_changes")
    names = list(compared)
    metrics = list(dict.fromkeys(m for n in names for m in compared[n]["metric_changes"]))
    axes = _axes(axes, (min(12.0, max(5.0, 0.4 * len(metrics) * len(names) + 2)), 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        changes = compared[name]["metric_changes"]
        axes.bar(np.arange(len(metrics)) + (i - (len(names) - 1) / 2) * width,
                 [changes[m]["mean"] for m in metrics], width,
                 yerr=[changes[m]["std"] or 0.0 for m in metrics], capsize=2, label=name)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(metrics)), metrics, rotation=30, ha="right")
    axes.set_ylabel("relative change, % (negative is better)")
    axes.set_title(title)
    axes.legend(fontsize="small")
    return _save(axes, path)


def _save(axes, path):
    figure = axes.get_figure()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
