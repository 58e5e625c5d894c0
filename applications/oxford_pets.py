"""Oxford-IIIT Pet sample: pet/background/border segmentation + breed + cat-vs-dog from one image.

A dense task and two image-level tasks on one conv trunk (Parkhi et al., "Cats
and Dogs", CVPR 2012, data). The segmentation head upsamples the trunk's output
back to the input size; the classification heads pool it. Trains one network
per task (`single_task`) and `hard_sharing`, then prints pixel accuracy and mean
IoU of the trimap, breed and species accuracy, and delta_m against the
single-task networks. Split: the official trainval (300) / test (298) lists. In
the 3-breed sample, species follows from breed (two cat breeds, one dog breed).

    python applications/oxford_pets.py [--epochs 25] [--image-size 64]
"""

import functools

import keras

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import conv
from keras_mtl.datasets import oxford_pets


def tasks(breeds):
    """Segmentation (an upsampling head back to the input size, softmax) and two
    classifiers on the pooled trunk (softmax), from `keras_mtl.tasks`."""
    return [presets.segmentation("segmentation", 3, decoder=(64, 32, 16), from_logits=False)] + [
        presets.classification(name, classes, pool=True, from_logits=False)
        for name, classes in (("breed", breeds), ("species", len(oxford_pets.SPECIES)))]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=25, batch_size=32)
    p.add_argument("--image-size", type=int, default=64, help="a multiple of 8")
    args = p.parse_args(argv)
    path = _common.data_folder("oxford_pets_sample", args.data)
    test = oxford_pets.load(path, "test", batch_size=64, image_size=args.image_size)
    breeds = len(oxford_pets.breeds(path))
    # No batch norm: with about ten steps an epoch its moving statistics lag far behind.
    trunk = functools.partial(conv, filters=(32, 64, 128), batch_norm=False)

    def run(architecture, seed):
        train = oxford_pets.load(path, "trainval", batch_size=args.batch_size,
                                 image_size=args.image_size, seed=seed)
        model = keras_mtl.build(architecture, tasks(breeds), backbone=trunk,
                                input_shape=(args.image_size, args.image_size, 3))
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), steps_per_execution=10)
        print(f"\n== {architecture}: {model.count_params():,} parameters")
        _common.fit(model, train, args.epochs)
        metrics = {
            "pixel acc": ("segmentation", keras.metrics.SparseCategoricalAccuracy()),
            "mIoU": ("segmentation", keras.metrics.MeanIoU(3, sparse_y_pred=False)),
            "breed acc": ("breed", keras.metrics.SparseCategoricalAccuracy()),
            "species acc": ("species", keras.metrics.SparseCategoricalAccuracy()),
        }
        return _common.evaluate(model, test, metrics)

    _common.compare(
        args, f"Oxford-IIIT Pet sample, official test list (298 images), {args.epochs} epochs, "
        f"{args.image_size}px", {a: functools.partial(run, a) for a in ("single_task", "hard_sharing")},
        lower_is_better=set())


if __name__ == "__main__":
    main()
