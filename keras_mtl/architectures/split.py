"""Split architecture: share a backbone's first layers, then one copy per task."""

import keras

from keras_mtl.architectures import _columns
from keras_mtl.architectures._ownership import copy_with_weights, fresh_copy, fresh_tasks
from keras_mtl.architectures.registry import build, register


def _split_key(column, split_at):
    if isinstance(split_at, bool) or not isinstance(split_at, (int, str)):
        raise TypeError(f"split_at must be a layer name or an int. Received: split_at={split_at!r}")
    if isinstance(split_at, str):
        return column.key_of(split_at, "split_at")
    if not 0 <= split_at <= len(column.keys):
        raise ValueError(
            f"split_at={split_at} is out of range: the backbone has {len(column.keys)} layers "
            "(0 shares nothing, the layer count shares everything)."
        )
    return column.keys[split_at - 1] if split_at else None


@register("split")
def split(tasks, inputs, backbone_factory, split_at):
    """Shares a backbone up to one layer, then gives each task its own copy of the
    rest (Misra et al., CVPR 2016, Figure 1: "Split" architectures).

    The shared layers keep the backbone's names; a task's layers are prefixed
    `<task>_`. A task's `tap` reads its own copy (or the shared part).

    Args:
        split_at: the last shared layer: its name, or the number of layers shared
            in the backbone's layer order (0: nothing shared, as `single_task`).
            The layer and everything it depends on are shared.
    """
    shared = _columns.Column(backbone_factory(""), "", inputs)
    key = _split_key(shared, split_at)
    shared_keys = shared.ancestors(key) if key is not None else set()
    task_columns = _columns.columns(backbone_factory, [f"{t.name}_" for t in tasks], inputs)
    for key in shared.keys:
        if key in shared_keys:
            out = shared.compute(key)
            for column in task_columns:
                column.set(key, out)
        else:
            for column in task_columns:
                column.compute(key)
    return {t.name: t.apply_head(_columns.task_feature(c, t)) for t, c in zip(tasks, task_columns)}


def split_points(backbone, input_shape=None):
    """The split points a sweep tries: 0 (nothing shared) and the end of every block
    of the backbone (each layer read by a following layer with weights), the last of
    which shares the whole backbone."""
    from keras_mtl.architectures.registry import _input_shape, backbone_factory

    shape = _input_shape(backbone, input_shape)
    column = _columns.Column(backbone_factory(backbone, shape)(""), "", keras.Input(shape))
    return [0] + column.stage_ends()


def _own_backbone(backbone):
    return copy_with_weights(backbone) if isinstance(backbone, keras.layers.Layer) else backbone


def _task_of(key, names):
    owners = [n for n in names if key.startswith(f"{n}_")]
    return max(owners, key=len) if owners else None


def split_sweep(tasks, x, y=None, validation_data=None, backbone="conv", input_shape=None,
                points=None, epochs=1, batch_size=32, seed=0, compile_options=None, verbose=0):
    """Trains one split model per split point and evaluates each (Misra et al.,
    CVPR 2016, Figure 1): which depth should the tasks stop sharing at?

    Every model gets the same seed, data, epochs and compile options, and its own
    copy of the backbone (of a backbone instance: with the instance's weights, which
    the sweep leaves unchanged).

    Args:
        tasks: the tasks (their heads are copied fresh for every model).
        x, y: training data, as for `Model.fit` (`y` None for a dataset).
        validation_data: what each model is evaluated on (`(x, y)` or a dataset);
            the training data when None.
        backbone, input_shape: as for `keras_mtl.build`.
        points: split points (names or ints); defaults to `split_points(backbone)`.
        epochs, batch_size: training length.
        seed: the random seed set before building and training each model.
        compile_options: keyword arguments of `MultiTaskModel.compile` (optimizers
            and other Keras objects in them are copied fresh for every model).

    Returns:
        A dict by task name of tables: lists of rows `{"split_at": point,
        "<metric>": value, ...}`, one row per point, with the task's loss and
        metrics on `validation_data`.
    """
    points = split_points(backbone, input_shape) if points is None else list(points)
    names = [t.name for t in tasks]
    tables = {n: [] for n in names}
    batch = {"batch_size": batch_size} if y is not None else {}
    for point in points:
        keras.utils.set_random_seed(seed)
        model = build("split", fresh_tasks(tasks), backbone=_own_backbone(backbone),
                      input_shape=input_shape, split_at=point)
        model.compile(**fresh_copy(compile_options or {}))
        model.fit(x, y, epochs=epochs, verbose=verbose, **batch)
        if validation_data is None:
            results = model.evaluate(x, y, verbose=verbose, return_dict=True, **batch)
        elif isinstance(validation_data, tuple):
            results = model.evaluate(*validation_data, verbose=verbose, return_dict=True, **batch)
        else:
            results = model.evaluate(validation_data, verbose=verbose, return_dict=True)
        rows = {n: {"split_at": point} for n in names}
        for key, value in results.items():
            owner = _task_of(key, names)
            if owner is not None and key != f"{owner}_weight":
                rows[owner][key[len(owner) + 1:]] = float(value)
        for n in names:
            tables[n].append(rows[n])
    return tables


def format_sweep(tables):
    """The tables of `split_sweep` as text, one block per task."""
    blocks = []
    for task, rows in tables.items():
        columns = ["split_at"] + [k for k in rows[0] if k != "split_at"]
        lines = [f"{task}:", "  ".join(f"{c:>12}" for c in columns)]
        for row in rows:
            lines.append("  ".join(
                f"{row[c]:>12.4f}" if isinstance(row[c], float) else f"{row[c]!s:>12}" for c in columns))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
