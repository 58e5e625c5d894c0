"""Multi-Task Attention Network (Liu, Johns and Davison, CVPR 2019)."""

import keras
import numpy as np

from keras_mtl.architectures import _columns
from keras_mtl.architectures.registry import register
from keras_mtl.graph import inline
from keras_mtl.layers.max_unpooling_2d import MaxUnpooling2D
from keras_mtl.layers.task_attention import TaskAttention
from keras_mtl.layers.batch_norm import GlobalBatchNormalization

SEGNET_FILTERS = (64, 128, 256, 512, 512)

# The reference code's PyTorch batch-norm defaults.
_BN = {"momentum": 0.9, "epsilon": 1e-5}


def _block_layers(units, name, rank):
    """A 3x3 convolution (a dense layer on vectors), batch norm and ReLU."""
    if rank == 4:
        project = keras.layers.Conv2D(units, 3, padding="same", use_bias=False, name=f"{name}_conv")
    else:
        project = keras.layers.Dense(units, use_bias=False, name=f"{name}_dense")
    return [project, GlobalBatchNormalization(name=f"{name}_bn", **_BN),
            keras.layers.ReLU(name=name)]


def _apply(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def _convs_per_level(level):
    # The reference network: two 3x3 convolutions in the two outer levels, three deeper.
    return 2 if level < 2 else 3


def segnet(input_shape, filters=SEGNET_FILTERS, prefix=""):
    """The SegNet encoder-decoder of MTAN's reference code (Badrinarayanan et al.,
    TPAMI 2017, as in github.com/lorenmt/mtan): per level, 3x3 conv-BN-ReLU blocks
    then 2x2 max pooling; the decoder unpools with the pooling indices and mirrors
    the encoder's channels. Returns a functional model, the full-resolution
    features with `filters[0]` channels.

    Layer names: `encoder<i>_block<k>` / `decoder<j>_block<k>` (block outputs),
    `encoder<i>_pool`, `decoder<j>_unpool`; decoder level j mirrors encoder level
    L + 1 - j.

    Args:
        input_shape: `(H, W, C)`, with H and W divisible by `2 ** len(filters)`.
        filters: channels per level.
        prefix: prefix for layer names.
    """
    filters = [int(f) for f in filters]
    if not filters or min(filters) < 1:
        raise ValueError(f"filters must be positive channel counts. Received: filters={filters!r}")
    height, width = input_shape[0], input_shape[1]
    step = 2 ** len(filters)
    if height % step or width % step:
        raise ValueError(
            f"segnet with {len(filters)} levels needs height and width divisible by {step}. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name=f"{prefix}image")
    x, unpooled_from = inputs, []
    for i, units in enumerate(filters):
        for k in range(1, _convs_per_level(i) + 1):
            x = _apply(_block_layers(units, f"{prefix}encoder{i + 1}_block{k}", 4), x)
        unpooled_from.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}encoder{i + 1}_pool")(x)
    for j in range(1, len(filters) + 1):
        level = len(filters) - j
        x = MaxUnpooling2D(name=f"{prefix}decoder{j}_unpool")([x, unpooled_from[level]])
        for k in range(1, _convs_per_level(level) + 1):
            x = _apply(_block_layers(filters[max(level - 1, 0)], f"{prefix}decoder{j}_block{k}", 4), x)
    return keras.Model(inputs, x, name=f"{prefix}segnet")


def _attend(task, name, attention_input, previous, features):
    if previous is not None:
        attention_input = keras.layers.Concatenate(name=f"{task.name}_{name}_input")(
            [attention_input, previous])
    attended, _ = TaskAttention(name=f"{task.name}_{name}")([attention_input, features])
    return attended


def _segnet_mtan(tasks, inputs, filters):
    levels = len(filters)
    _, features = inline(segnet(inputs.shape[1:], filters), inputs)
    encoder = [(features[f"encoder{i}_block1"], features[f"encoder{i}_block{_convs_per_level(i - 1)}"])
               for i in range(1, levels + 1)]
    decoder = [(features[f"decoder{j}_unpool"], features[f"decoder{j}_block{_convs_per_level(levels - j)}"])
               for j in range(1, levels + 1)]
    # As in the reference code, the 3x3 blocks between attention modules are shared by the tasks.
    encoder_blocks = [_block_layers(filters[min(i + 1, levels - 1)], f"encoder{i + 1}_attention_block", 4)
                      for i in range(levels)]
    decoder_blocks = [_block_layers(filters[max(levels - j - 1, 0)], f"decoder{j}_attention_block", 4)
                      for j in range(1, levels + 1)]
    pools = [keras.layers.MaxPooling2D(2, name=f"encoder{i}_attention_pool") for i in range(1, levels + 1)]
    upsamplings = [keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{j}_attention_upsampling")
                   for j in range(1, levels + 1)]
    outputs = {}
    for task in tasks:
        previous = None
        for i, (first, last) in enumerate(encoder):
            attended = _attend(task, f"encoder{i + 1}_attention", first, previous, last)
            previous = pools[i](_apply(encoder_blocks[i], attended))
        for j, (first, last) in enumerate(decoder):
            previous = _apply(decoder_blocks[j], upsamplings[j](previous))
            previous = _attend(task, f"decoder{j + 1}_attention", first, previous, last)
        outputs[task.name] = task.apply_head(previous)
    return outputs


def _stage_pairs(stages, features, backbone_name):
    pairs = []
    for stage in stages:
        first, last = (stage, stage) if isinstance(stage, str) else tuple(stage)
        for name in (first, last):
            if name not in features:
                raise ValueError(
                    f"stages names {name!r}, which is not a layer of {backbone_name}. "
                    f"Layers: {list(features)}"
                )
        pairs.append((features[first], features[last]))
    return pairs


def _transition(pair, following, name):
    """The shared layers from one stage's attended features to the next stage's
    shape: a 3x3 block to its channels, and max pooling after it or bilinear
    upsampling before it when the resolution changes (as in the reference)."""
    source, target = pair[1], following[1]
    rank = len(target.shape)
    if len(source.shape) != rank or rank not in (2, 4):
        raise ValueError(
            f"Consecutive stages must both be images or both vectors. Received shapes "
            f"{source.shape} and {target.shape} at {name}"
        )
    block = _block_layers(target.shape[-1], f"{name}_block", rank)
    if rank == 2 or source.shape[1] == target.shape[1]:
        return block
    ratio = source.shape[1] / target.shape[1]
    if ratio > 1 and ratio.is_integer() and source.shape[2] / target.shape[2] == ratio:
        return block + [keras.layers.MaxPooling2D(int(ratio), name=f"{name}_pool")]
    if ratio < 1 and (1 / ratio).is_integer() and target.shape[2] / source.shape[2] == 1 / ratio:
        return [keras.layers.UpSampling2D(int(1 / ratio), interpolation="bilinear",
                                          name=f"{name}_upsampling")] + block
    raise ValueError(
        f"Stage resolutions must differ by an integer factor. Received shapes "
        f"{source.shape} and {target.shape} at {name}"
    )


def _backbone_mtan(tasks, inputs, backbone_factory, stages):
    backbone = backbone_factory("")
    _, features = inline(backbone, inputs)
    pairs = _stage_pairs(stages, features, backbone.name)
    transitions = [_transition(pairs[s], pairs[s + 1], f"stage{s + 1}_attention") for s in range(len(pairs) - 1)]
    outputs = {}
    for task in tasks:
        previous = None
        for s, (first, last) in enumerate(pairs):
            attended = _attend(task, f"stage{s + 1}_attention", first, previous, last)
            previous = _apply(transitions[s], attended) if s < len(transitions) else attended
        outputs[task.name] = task.apply_head(previous)
    return outputs


@register("mtan")
def mtan(tasks, inputs, backbone_factory, stages=None, filters=None):
    """Multi-Task Attention Network (Liu, Johns and Davison, "End-to-End Multi-Task
    Learning with Attention", CVPR 2019): a shared network and, per task, a chain
    of `TaskAttention` modules (named `<task>_..._attention`), each masking one
    stage's features; between modules a shared 3x3 block brings the attended
    features to the next stage's channels and resolution.

    Without `stages`, the shared network is the reference SegNet encoder-decoder
    (`segnet`, with `filters`) and the `backbone` argument is not used: encoder
    modules read each level's first block, decoder modules the unpooled features,
    each concatenated with the previous module's output, as in the reference code.
    With `stages`, MTAN runs on the backbone: a module per stage, and the task's
    head reads the last module's output.

    Args:
        stages: backbone layer names whose outputs get masks, in order; an entry
            may be a pair `(first, last)`: the mask over `last` is computed from
            `first` (the stage's first layer, as in the paper).
        filters: channels per SegNet level (default `SEGNET_FILTERS`).
    """
    _columns.reject_taps(tasks, "mtan")
    if stages is None:
        return _segnet_mtan(tasks, inputs, list(filters or SEGNET_FILTERS))
    if filters is not None:
        raise ValueError(f"filters applies to the SegNet variant (stages=None). Received: filters={filters!r}")
    if not stages:
        raise ValueError("stages must name at least one backbone layer. Received: stages=[]")
    return _backbone_mtan(tasks, inputs, backbone_factory, list(stages))


def _modules_by_task(model):
    modules = [layer for layer in model.layers if isinstance(layer, TaskAttention)]
    if not modules:
        raise ValueError(f"Model {model.name!r} has no attention modules.")
    return {task: [m for m in modules if m.name.startswith(f"{task}_")] for task in model.output_names}


def attention_masks(model, x, batch_size=None):
    """The masks of every `TaskAttention` module of `model` for inputs `x`: a dict
    by module name of arrays shaped like the features they mask, task by task,
    each task's modules from the first to the last."""
    modules = [m for chain in _modules_by_task(model).values() for m in chain]
    reader = keras.Model(model.inputs, {m.name: m.output[1] for m in modules})
    masks = reader.predict(x, batch_size=batch_size, verbose=0)
    return {m.name: masks[m.name] for m in modules}


def plot_attention_masks(model, x, index=0, path=None):
    """Draws example `index` of `x` and, per task (rows), the channel-mean of each
    attention module's mask (columns, from the first module to the last).

    Returns the matplotlib figure; saves it to `path` when given.
    """
    from matplotlib.figure import Figure

    example = np.asarray(x[index:index + 1])
    masks = attention_masks(model, example)
    rows = {task: [(m.name, masks[m.name]) for m in chain] for task, chain in _modules_by_task(model).items()}
    columns = max(len(r) for r in rows.values())
    fig = Figure(figsize=(1.8 * (columns + 1), 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), columns + 1, squeeze=False)
    image = example[0]
    for r, (task, modules) in enumerate(rows.items()):
        if image.ndim == 3 and image.shape[-1] in (1, 3):
            shown = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
            axes[r, 0].imshow(shown.squeeze(-1) if image.shape[-1] == 1 else shown, cmap="gray")
        axes[r, 0].set_ylabel(task)
        for c in range(columns + 1):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        for c, (name, mask) in enumerate(modules, start=1):
            mean = mask[0].mean(axis=-1) if mask.ndim == 4 else mask[0][None, :]
            axes[r, c].imshow(mean, vmin=0.0, vmax=1.0, cmap="magma")
            axes[r, c].set_title(name[len(task) + 1:].replace("_attention", ""), fontsize="small")
    if path is not None:
        fig.savefig(path)
    return fig
