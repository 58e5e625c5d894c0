"""Detection as multi-task learning on Scenes: Faster R-CNN's region proposal network
(anchor objectness and box regression, two tasks on one trunk) trained with the paper's
hand-set lambda = 1 and with weighting methods, and beside segmentation and depth.

Rows: the detector with fixed weights (1, 1), the paper's `L_cls + lambda L_reg` with
lambda = 1 (both terms means, over the sampled anchors and over their positives), then the
same detector with each of `--methods`, and detection + segmentation + depth on one SegNet
trunk with the same fixed weights. delta_m compares each row's mAP@[0.5:0.95] and mAP@0.5
(validation, every object class as one class "object") with the fixed-lambda detector of
the same seed.

    python applications/detection_scenes.py                             # one seed
    python applications/detection_scenes.py --seeds 3 --results det.json --figures docs/figures

Each image's anchor minibatch (`--anchors-per-image`, up to half positive) is drawn once
before training, with the row's seed. The effective lambda of a weighting method is the ratio of
the task weights it logs at the last epoch, boxes / objectness (mean over seeds).
"""

import functools
import os

import keras
import numpy as np
import tensorflow as tf

import _common
import _scenes
import keras_mtl
from keras_mtl import detection
from keras_mtl.backbones.segnet import segnet
from keras_mtl.datasets.scenes import scenes_arrays

DETECTION = ("objectness", "boxes")
DETECTION_METRICS = ("map", "map50")
DENSE_METRICS = ("segmentation_miou", "depth_abs_error")
MULTI_TASK = "det+seg+depth"
BASELINE = "fixed_lambda_1"


def parse_args(argv=None):
    p = _scenes.parser(__doc__.split("\n\n")[0], train=240, val=100, epochs=6, filters="16,32,64")
    p.set_defaults(batch_size=8)
    p.add_argument("--methods", default="dwa,uncertainty,gradnorm,pcgrad",
                   help=f"comma-separated weighting methods from {keras_mtl.weighting.available()}")
    p.add_argument("--scales", default="6,12,24", help="anchor sizes in pixels")
    p.add_argument("--anchors-per-image", type=int, default=64,
                   help="each image's anchor minibatch, up to half positive (the paper's 256 for ~2400 anchors "
                        "per image; a Scenes image has about 5 positive anchors)")
    p.add_argument("--figures", help="folder for detection_scenes.png (each row's proposals on validation images, "
                                     "first seed)")
    p.add_argument("--verbose", type=int, default=0)
    args = _scenes.parse_args(p, argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in keras_mtl.weighting.available()]
    if unknown:
        p.error(f"unknown weighting methods {unknown}; available: {keras_mtl.weighting.available()}")
    args.scales = tuple(float(s) for s in args.scales.split(","))
    if len(args.filters) < 2 or args.height % 4 or args.width % 4:
        p.error(f"the RPN reads the stride-4 block: --filters needs two or more blocks and --height, --width "
                f"multiples of 4. Received: --filters {args.filters}, --height {args.height}, --width {args.width}")
    return args


def proposal_layer(args):
    """Decodes the RPN's outputs on the stride-4 map (`encoder2`)."""
    return detection.ProposalLayer((args.height // 4, args.width // 4), 4, args.scales, (0.5, 1.0, 2.0),
                                   image_size=(args.height, args.width), max_output_size=20, iou_threshold=0.7)


def experiment(args, seed):
    """Training Scenes images with RPN targets and dense labels; validation images and labels."""
    layer = proposal_layer(args)
    train_images, train_labels = scenes_arrays(args.train, args.height, args.width, seed=seed)
    val_images, val_labels = scenes_arrays(args.val, args.height, args.width, seed=seed + 10_000)
    y, w = detection.rpn_targets(layer.anchors, train_labels["boxes"], train_labels["box_mask"],
                                 num_samples=args.anchors_per_image, seed=seed)
    y = {k: keras.ops.convert_to_numpy(v) for k, v in y.items()}
    y.update({t: train_labels[t] for t in ("segmentation", "depth")})
    w = {k: keras.ops.convert_to_numpy(v) for k, v in w.items()}
    valid_depth = train_labels["depth"][train_labels["depth"] > 0]
    return {
        "train": (train_images, y, w), "val_images": val_images, "val_labels": val_labels,
        "mean_depth": float(valid_depth.mean()), "num_anchors": len(layer.scales) * len(layer.aspect_ratios),
    }


def dataset(images, labels, weights, tasks, batch_size, shuffle_seed=None):
    """Batches of `(image, labels, sample weights)`; the dense tasks weigh every image 1."""
    ones = np.ones(len(images), "float32")
    data = tf.data.Dataset.from_tensor_slices((images, {t: labels[t] for t in tasks},
                                               {t: weights.get(t, ones) for t in tasks}))
    if shuffle_seed is not None:
        data = data.shuffle(len(images), seed=shuffle_seed)
    return data.batch(batch_size).prefetch(2)


def build(args, data, dense):
    """The RPN on SegNet's stride-4 block, with segmentation and depth heads when `dense`."""
    tasks = detection.rpn_tasks(data["num_anchors"], tap="encoder2", channels=2 * args.filters[0], metrics=False)
    if dense:
        tasks += _scenes.make_tasks(args.filters[0], data["mean_depth"])[:2]
    backbone = functools.partial(segnet, filters=args.filters, convs_per_block=1)
    return keras_mtl.build("hard_sharing", tasks, backbone=backbone, input_shape=(args.height, args.width, 3))


def evaluate(model, layer, images, labels, batch_size, dense):
    """Validation mAP of the model's proposals (every object one class) and, when `dense`,
    segmentation mIoU and depth error; also the first batch's detections, for drawing."""
    outputs = dict(zip(model.output_names, keras.tree.flatten(model.outputs)))
    detector = keras.Model(model.inputs, {**outputs, "detections": layer(outputs["objectness"], outputs["boxes"])})
    average_precision = detection.MeanAveragePrecision()
    dense_metrics = _scenes.make_metrics()
    first = None
    for i in range(0, len(images), batch_size):
        batch = slice(i, i + batch_size)
        out = detector.predict_on_batch(images[batch])
        found, scores, valid = (keras.ops.convert_to_numpy(v) for v in out["detections"])
        first = first or (images[batch], found, scores, valid)
        box_mask = labels["box_mask"][batch]
        average_precision.update_state(labels["boxes"][batch], np.zeros(box_mask.shape, int), box_mask, found,
                                       scores, np.zeros(valid.shape, int), valid)
        for task in ("segmentation", "depth") if dense else ():
            for metric in dense_metrics[task]:
                metric.update_state(labels[task][batch], out[task])
    result = average_precision.result()
    for task in ("segmentation", "depth") if dense else ():
        result.update({f"{task}_{m.name}": float(m.result()) for m in dense_metrics[task]})
    return {k: v for k, v in result.items() if k in DETECTION_METRICS + DENSE_METRICS}, first


def draw(drawn, labels, path, shown=4, top=3):
    """The `top` proposals (red, with their scores) and the true boxes (green) on validation
    images, one row per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(drawn), shown, figsize=(2.4 * shown, 2.0 * len(drawn)), squeeze=False)
    for row, (name, (images, boxes, scores, valid)) in enumerate(drawn.items()):
        for i in range(shown):
            ax = axes[row, i]
            ax.imshow(images[i])
            for box in labels["boxes"][i][labels["box_mask"][i]]:
                ax.add_patch(plt.Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, color="lime", lw=1.5))
            for box, score in list(zip(boxes[i][valid[i]], scores[i][valid[i]]))[:top]:
                ax.add_patch(plt.Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, color="red", lw=1))
                ax.text(box[0], box[1], f"{score:.2f}", color="red", fontsize=6, va="bottom")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    figure.suptitle(f"Scenes validation images: true boxes (green), each model's {top} best proposals (red)",
                    fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv=None):
    args = parse_args(argv)
    print(f"Scenes detection: {args.train} training and {args.val} validation images of {args.height}x{args.width}; "
          f"{args.epochs} epochs, Adam {args.learning_rate}, anchors {args.scales} x (0.5, 1, 2) every 4 pixels")
    data = functools.lru_cache(maxsize=1)(lambda seed: experiment(args, seed))
    layer = proposal_layer(args)
    effective_lambda, drawn = {}, {}

    def run(label, weighting, dense, seed):
        d = data(seed)
        tasks = DETECTION + (("segmentation", "depth") if dense else ())
        model = build(args, d, dense)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                      weighting=weighting() if callable(weighting) else weighting)
        history = model.fit(dataset(*d["train"], tasks, args.batch_size, shuffle_seed=seed), epochs=args.epochs,
                            verbose=args.verbose).history
        effective_lambda.setdefault(label, []).append(history["boxes_weight"][-1] / history["objectness_weight"][-1])
        result, first = evaluate(model, layer, d["val_images"], d["val_labels"], 2 * args.batch_size, dense)
        drawn.setdefault(label, first)
        return result

    fixed = functools.partial(keras_mtl.weighting.Fixed, [1.0] * 2)
    runs = {BASELINE: functools.partial(run, BASELINE, fixed, False)}
    runs.update({m: functools.partial(run, m, m, False) for m in args.methods})
    runs[MULTI_TASK] = functools.partial(run, MULTI_TASK, functools.partial(keras_mtl.weighting.Fixed, [1.0] * 4), True)
    summary = _common.compare(
        args, f"RPN on Scenes, {args.train} training / {args.val} validation images, {args.epochs} epochs", runs,
        lower_is_better={"depth_abs_error"}, baseline=BASELINE, compared=list(DETECTION_METRICS),
        shown=list(DETECTION_METRICS + DENSE_METRICS))
    if effective_lambda:
        print("Effective lambda (last-epoch weight of boxes / objectness, mean over the seeds run here): " + "; ".join(
            f"{name} {np.mean(values):.2f}" for name, values in effective_lambda.items()))
    if args.figures and drawn:
        os.makedirs(args.figures, exist_ok=True)
        print(f"Wrote {draw(drawn, data(args.seed)['val_labels'], os.path.join(args.figures, 'detection_scenes.png'))}")
    return summary


if __name__ == "__main__":
    main()
