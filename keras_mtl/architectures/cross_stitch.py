"""Cross-stitch networks (Misra et al., CVPR 2016)."""

import keras
import numpy as np

from keras_mtl._private import producer
from keras_mtl.architectures import _columns
from keras_mtl.architectures._ownership import fresh_tasks
from keras_mtl.architectures.registry import build, register
from keras_mtl.layers.cross_stitch import CrossStitch


@register("cross_stitch")
def cross_stitch(tasks, inputs, backbone_factory, units_after=None, alpha_s=0.9, alpha_d=None,
                 per_channel=False):
    """One backbone column per task (layers prefixed `<task>_`), with a cross-stitch
    unit after chosen layers that mixes the columns' activations (Misra, Shrivastava,
    Gupta and Hebert, "Cross-stitch Networks for Multi-task Learning", CVPR 2016).

    The units are named `cross_stitch_<layer>`; their variables are in the optimizer
    group "cross_stitch". Every column layer before the last unit feeds every task
    through the units, so the graph counts it as shared; later layers and heads are
    task-specific.

    Args:
        units_after: names of the backbone layers followed by a unit. Default: every
            stage end of the backbone (after each block, as the paper's units after
            pool1, pool2, pool5, fc6 and fc7).
        alpha_s, alpha_d, per_channel: see `keras_mtl.layers.CrossStitch`.
    """
    if len(tasks) < 2:
        raise ValueError(f"cross_stitch needs at least 2 tasks. Received: {len(tasks)} task(s)")
    columns = _columns.columns(backbone_factory, [f"{t.name}_" for t in tasks], inputs)
    first = columns[0]
    names = first.stage_ends() if units_after is None else list(units_after)
    if not names:
        raise ValueError("units_after must name at least one layer. Received: units_after=[]")
    unit_keys = {first.key_of(n, "units_after") for n in names}
    for key in first.keys:
        outs = [c.compute(key) for c in columns]
        if key in unit_keys:
            unit = CrossStitch(alpha_s=alpha_s, alpha_d=alpha_d, per_channel=per_channel,
                               name=f"cross_stitch_{key[0]}")
            for column, mixed in zip(columns, unit(outs)):
                column.set(key, mixed)
    return {t.name: t.apply_head(_columns.task_feature(c, t)) for t, c in zip(tasks, columns)}


def _layers_by_name(model):
    found = {}
    for layer in model.layers:
        found.setdefault(layer.name, layer)
        if isinstance(layer, keras.Model):
            for name, inner in _layers_by_name(layer).items():
                found.setdefault(name, inner)
    return found


def from_single_task_models(models, tasks, backbone="conv", input_shape=None, **options):
    """A cross-stitch network whose columns and heads start from trained single-task
    networks (the paper's initialisation from fine-tuned single-task networks).

    Args:
        models: a model holding every task's column, e.g. one built with
            `keras_mtl.build("single_task", tasks, backbone)` and trained; or a dict
            by task name of per-task models, whose layers are named like the
            column's (`<task>_conv1`) or like the backbone's (`conv1`).
        tasks, backbone, input_shape: as for `keras_mtl.build`, with the same
            backbone as the single-task models.
        **options: options of the "cross_stitch" architecture.

    Returns:
        The cross-stitch `MultiTaskModel`, with new layers (none shared with `models`
        or `tasks`); every layer but the units holds the weights of the layer of the
        same name in `models`.
    """
    model = build("cross_stitch", fresh_tasks(tasks), backbone=backbone, input_shape=input_shape,
                  **options)
    names = [t.name for t in tasks]
    if isinstance(models, dict):
        unknown = set(models) - set(names)
        if unknown:
            raise ValueError(f"models names unknown tasks {sorted(unknown)}. Tasks: {names}")
        sources = {n: _layers_by_name(m) for n, m in models.items()}
    else:
        sources = {None: _layers_by_name(models)}
    pairs, missing = [], []
    for layer in model.layers:
        if isinstance(layer, CrossStitch) or not layer.weights:
            continue
        source = _source_layer(layer.name, names, sources)
        shapes = [tuple(w.shape) for w in layer.weights]
        if source is None or [tuple(w.shape) for w in source.weights] != shapes:
            missing.append(layer.name)
        else:
            pairs.append((layer, source))
    if missing:
        raise ValueError(
            f"No layer of the single-task models matches layer(s) {missing} of the "
            "cross-stitch model by name and weight shapes. Build the single-task models "
            "with the same backbone and tasks (e.g. keras_mtl.build('single_task', ...))."
        )
    for layer, source in pairs:
        layer.set_weights(source.get_weights())
    return model


def _source_layer(name, task_names, sources):
    if None in sources:
        return sources[None].get(name)
    owners = [n for n in task_names if name == n or name.startswith(f"{n}_")]
    for owner in sorted(owners, key=len, reverse=True):
        if owner in sources:
            found = sources[owner].get(name) or sources[owner].get(name[len(owner) + 1:])
            if found is not None:
                return found
    for layers in sources.values():
        if name in layers:
            return layers[name]
    return None


def cross_stitch_alphas(model):
    """The learned mixing weights of every cross-stitch unit: a dict by unit name of
    arrays of shape (N, N), or (N, N, channels) for per-channel units; row i holds
    the weights of the columns' activations in column i's output."""
    return {layer.name: layer.alpha.numpy() for layer in model.layers if isinstance(layer, CrossStitch)}


def _column_names(unit):
    """The tasks of a unit's columns, in order: its inputs come from `<task>_<layer>`."""
    suffix = "_" + unit.name[len("cross_stitch_"):]
    names = [producer(t)[0].operation.name for t in keras.tree.flatten(unit.input)]
    return [n[: -len(suffix)] if n.endswith(suffix) else n for n in names]


def plot_cross_stitch_alphas(model, path=None):
    """Draws every unit's alphas: the (N, N) matrix for per-pair units, and for
    per-channel units histograms over channels of the same-task (alpha_S) and
    cross-task (alpha_D) weights, as the paper's analysis of learned units.

    Returns the matplotlib figure; saves it to `path` when given.
    """
    from matplotlib.figure import Figure

    alphas = cross_stitch_alphas(model)
    if not alphas:
        raise ValueError(f"Model {model.name!r} has no cross-stitch units.")
    columns = min(len(alphas), 4)
    rows = -(-len(alphas) // columns)
    fig = Figure(figsize=(3.6 * columns, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(alphas):]:
        ax.set_axis_off()
    for ax, (name, alpha) in zip(axes, alphas.items()):
        n = alpha.shape[0]
        if alpha.ndim == 3:
            same = alpha[np.eye(n, dtype=bool)].ravel()
            other = alpha[~np.eye(n, dtype=bool)].ravel()
            bins = np.linspace(min(same.min(), other.min()), max(same.max(), other.max()), 25)
            ax.hist(same, bins=bins, alpha=0.7, label="alpha_S (same task)")
            ax.hist(other, bins=bins, alpha=0.7, label="alpha_D (other task)")
            ax.set_xlabel("alpha")
            ax.set_ylabel("channels")
            ax.legend(fontsize="small")
        else:
            image = ax.imshow(alpha, vmin=min(0.0, alpha.min()), vmax=max(1.0, alpha.max()), cmap="viridis")
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{alpha[i, j]:.2f}", ha="center", va="center", color="w")
            labels = _column_names(model.get_layer(name))
            ax.set_xticks(range(n), labels=labels, rotation=45)
            ax.set_yticks(range(n), labels=labels)
            ax.set_xlabel("from column")
            ax.set_ylabel("to column")
            fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(name, fontsize="small")
    if path is not None:
        fig.savefig(path)
    return fig
