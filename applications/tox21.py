"""Tox21: 12 toxicity assays with missing labels, one multi-task network vs 12 single-task ones.

Molecules are Morgan fingerprints (RDKit, radius 2, 1024 bits); a label that was
not measured is masked out of its task's loss and metrics (a per-task sample
weight), never counted as a negative. Trains `single_task` (12 independent MLPs,
trained in one pass: nothing is shared, so each sees only its own loss) and
`hard_sharing` (one shared MLP, 12 logistic heads), then prints each task's test
ROC-AUC, the mean ROC-AUC and delta_m against the single-task networks. Split:
scaffold (DeepChem's Bemis-Murcko scaffold split, 80/10/10) by default, or
seeded random with --split random.

    python applications/tox21.py [--epochs 15] [--split scaffold|random]
"""

import functools

import keras
import numpy as np

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import mlp
from keras_mtl.datasets import tox21


def tasks():
    """A sigmoid output per assay (`keras_mtl.tasks.binary`)."""
    return [presets.binary(name, from_logits=False) for name in tox21.TASKS]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=15, batch_size=128)
    p.add_argument("--split", choices=tox21.SPLIT_METHODS, default="scaffold")
    p.add_argument("--units", default="512,256", help="hidden layer widths of the MLP")
    p.add_argument("--dropout", type=float, default=0.3)
    args = p.parse_args(argv)
    path = _common.data_folder("tox21", args.data)
    trunk = functools.partial(mlp, units=tuple(int(u) for u in args.units.split(",")),
                              dropout=args.dropout)

    def run(architecture, seed):
        train = tox21.load(path, "train", batch_size=args.batch_size, method=args.split, seed=seed)
        test = tox21.load(path, "test", batch_size=1024, method=args.split, seed=seed)
        model = keras_mtl.build(architecture, tasks(), backbone=trunk,
                                input_shape=train.element_spec[0].shape[1:])
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), steps_per_execution=8)
        print(f"\n== {architecture}: {model.count_params():,} parameters")
        _common.fit(model, train, args.epochs)
        metrics = {name: (name, keras.metrics.AUC(num_thresholds=2000)) for name in tox21.TASKS}
        aucs = _common.evaluate(model, test, metrics)
        return {"mean AUC": float(np.mean(list(aucs.values()))), **aucs}

    _common.compare(
        args, f"Tox21 test ({args.split} split), {args.epochs} epochs, ROC-AUC on "
        "measured labels only; mean AUC: the mean of the 12",
        {a: functools.partial(run, a) for a in ("single_task", "hard_sharing")}, lower_is_better=set(),
        compared=tox21.TASKS)


if __name__ == "__main__":
    main()
