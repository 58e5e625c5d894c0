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
    from matplotlib.figure import Figure

    series = _weight_series(history)
    if axes is None:
        axes = Figure(figsize=(6, 4), layout="constrained").add_subplot()
    figure = axes.get_figure()
    for task, values in series.items():
        axes.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None,
                  label=task)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean task weight")
    axes.set_title(title)
    axes.legend(fontsize="small", ncols=2 if len(series) > 5 else 1)
    if path is not None:
        figure.savefig(path)
    return figure
