"""Comparing a multi-task model with single-task baselines."""

import keras

from keras_mtl.architectures import build


def _flat(metrics, arg):
    """Accepts `{metric: value}` or `{task: {metric: value}}` (merged)."""
    if not isinstance(metrics, dict):
        raise TypeError(f"{arg} must be a dict of metric values. Received: {arg}={metrics!r}")
    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        return {k: v for inner in metrics.values() for k, v in inner.items()}
    return metrics


def delta_m(results, baselines, higher_is_better):
    """The mean relative difference of a model's metrics from the baselines', in %.

    `delta_m = 100 / T * sum_i s_i (M_m,i - M_b,i) / M_b,i` over the T metrics named in
    `higher_is_better`, with `s_i = -1` for a metric where higher is better and
    `s_i = +1` where lower is better. Sign convention: lower is better; a negative
    value means the model beats the baselines on average, and 0 means parity.
    This is Maninis et al.'s measure ("Attentive Single-Tasking of Multiple Tasks",
    CVPR 2019; Vandenhende et al., TPAMI 2021), which they report with the
    opposite sign as a performance change, in the orientation of Liu et al.
    (CAGrad, NeurIPS 2021) and Navon et al. (Nash-MTL, ICML 2022): averaged over
    all metrics, lower is better.

    Args:
        results: the model's metrics, `{name: value}` (e.g. Keras logs) or
            `{task: {name: value}}`.
        baselines: the single-task baselines' metrics, in the same form.
        higher_is_better: `{name: bool}` for each metric to compare.

    Returns:
        A float, in percent.

    Example:

    ```python
    delta_m({"seg_miou": 0.55, "depth_abs_error": 0.60},
            {"seg_miou": 0.50, "depth_abs_error": 0.50},
            {"seg_miou": True, "depth_abs_error": False})  # (-10 + 20) / 2 = 5.0
    ```
    """
    results = _flat(results, "results")
    baselines = _flat(baselines, "baselines")
    if not isinstance(higher_is_better, dict) or not higher_is_better:
        raise ValueError(
            f"higher_is_better must be a non-empty dict {{metric: bool}}. Received: {higher_is_better!r}")
    total = 0.0
    for name, higher in higher_is_better.items():
        for arg, values in (("results", results), ("baselines", baselines)):
            if name not in values:
                raise ValueError(f"{arg} has no metric {name!r}. Available: {sorted(values)}")
        baseline = float(baselines[name])
        if baseline == 0:
            raise ValueError(f"The baseline of {name!r} is 0; a relative change is undefined.")
        sign = -1.0 if higher else 1.0
        total += sign * (float(results[name]) - baseline) / baseline
    return 100.0 * total / len(higher_is_better)


def _by_task(logs, task_names):
    """Splits `<task>_<metric>` logs by task (the longest matching task name wins)."""
    by_task = {name: {} for name in task_names}
    for key, value in logs.items():
        owners = [n for n in task_names if key.startswith(n + "_")]
        if owners and not key.endswith("_weight"):
            by_task[max(owners, key=len)][key] = float(value)
    return by_task


def train_single_task_baselines(tasks_factory, backbone, input_shape, train_data, val_data, epochs,
                                optimizer="adam", verbose="auto", **fit_options):
    """Trains one independent network per task and evaluates it.

    Builds `keras_mtl.build("single_task", ...)`: one backbone copy and head per task,
    nothing shared, trained together with equal weights. Since no variable feeds two
    tasks, each network's gradient is that of its own loss alone and Adam-type
    updates are per variable, so (without global-norm clipping) this is the same as
    training T separate models, in one pass over the data.

    Args:
        tasks_factory: a function returning a fresh list of `keras_mtl.Task` (with
            new head layers; the multi-task model keeps its own).
        backbone, input_shape: as for `keras_mtl.build`.
        train_data, val_data: a `tf.data.Dataset` of `(x, {task: y})`, or a tuple
            `(x, {task: y})` of arrays (then pass `batch_size`).
        epochs: training epochs.
        optimizer: an optimizer identifier (name, config or instance).
        verbose: as in `keras.Model.fit`.
        **fit_options: more `fit` arguments (e.g. `batch_size`, `callbacks`).

    Returns:
        `{task: {log name: value}}`: each task's validation loss and metrics under
        their Keras log names (`<task>_loss`, `<task>_<metric>`).
    """
    if not callable(tasks_factory):
        raise TypeError(f"tasks_factory must be a function returning tasks. Received: {tasks_factory!r}")
    tasks = list(tasks_factory())
    model = build("single_task", tasks=tasks, backbone=backbone, input_shape=input_shape,
                  name="single_task_baselines")
    model.compile(optimizer=keras.optimizers.get(optimizer), weighting="equal")

    def arrays_or_dataset(data):
        return ({"x": data[0], "y": data[1]} if isinstance(data, tuple) else {"x": data})

    # Keras shuffles arrays itself; a dataset shuffles (or not) as it was built.
    fit_options.setdefault("shuffle", isinstance(train_data, tuple))
    model.fit(**arrays_or_dataset(train_data), epochs=epochs, verbose=verbose, **fit_options)
    logs = model.evaluate(**arrays_or_dataset(val_data), batch_size=fit_options.get("batch_size"),
                          verbose=0, return_dict=True)
    return _by_task(logs, model.task_names)
