"""Oxford-IIIT Pet sample: breed identification (softmax) + verification (embedding) from one image.

DeepID2's joint identification-verification (Sun et al., NIPS 2014) on the breeds
of the Oxford Pets sample (Parkhi et al., CVPR 2012): a conv trunk with a breed
softmax head and an L2-normalised embedding head trained by DeepID2's contrastive
loss or a triplet loss (batch-all or batch-hard, Hermans et al. 2017), on P x K batches
(`keras_mtl.datasets.pk_batches`). Trains identification alone, verification alone
and both, for several seeds, and reports on the held-out test images: breed
accuracy, and the verification ROC-AUC and retrieval recall@1 of all test pairs
(one batch of the whole test set). The identification-only model is verified with
its pooled trunk features (the features DeepID2 compares against). The single-task
row combines the two models trained alone (breed accuracy of identification,
verification of verification), the baseline of delta_m. Split: the official
trainval (300) / test (298) lists; 3 breeds, so every batch holds all of them.

    python applications/oxford_pets_metric.py [--epochs 40] [--seeds 3] [--loss triplet --mining batch_all]
"""

import functools

import keras
import numpy as np

import _common
import keras_mtl
from keras_mtl import tasks as presets
from keras_mtl.backbones import conv
from keras_mtl.datasets import oxford_pets, pk_batches
from keras_mtl.losses import ContrastiveLoss, TripletLoss
from keras_mtl.metrics import PairDistanceAUC, RecallAtOne

SETTINGS = {"identification": ("breed",), "verification": ("verification",),
            "both": ("breed", "verification")}


def arrays(path, split, image_size, max_examples=None, seed=0):
    """A split's images `(n, S, S, 3)` in [0, 1] and breed indices `(n,)`."""
    ds = oxford_pets.load(path, split, tasks=("breed",), batch_size=64, image_size=image_size,
                          training=False, max_examples=max_examples, seed=seed, cache=False)
    images, breeds = zip(*((x.numpy(), y["breed"].numpy()) for x, y in ds))
    return np.concatenate(images), np.concatenate(breeds)


def tasks(names, breeds, loss, embedding):
    """Breed identification (logits on the pooled trunk) and verification (an
    L2-normalised embedding trained by `loss`), from `keras_mtl.tasks`."""
    made = {"breed": presets.classification("breed", breeds, pool=True),
            "verification": presets.verification(embedding=embedding, loss=loss)}
    return [made[n] for n in names]


def verification_metrics(embeddings, labels):
    """ROC-AUC and recall@1 over all pairs of the held-out set."""
    results = {}
    for name, metric in (("verification_auc", PairDistanceAUC()), ("recall_at_1", RecallAtOne())):
        metric.update_state(labels, embeddings)
        results[name] = float(metric.result())
    return results


def run(setting, data, args, seed):
    (x_train, y_train), (x_test, y_test) = data
    loss = (TripletLoss(args.mining, margin=args.margin) if args.loss == "triplet"
            else ContrastiveLoss(margin=args.margin))
    names = SETTINGS[setting]
    # No batch norm: with about a dozen steps an epoch its moving statistics lag far behind.
    trunk = functools.partial(conv, filters=(16, 32, 64), batch_norm=False)
    model = keras_mtl.build("hard_sharing", tasks(names, int(y_train.max()) + 1, loss, args.embedding),
                            backbone=trunk, input_shape=x_train.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), weighting=args.weighting)
    per_batch = args.classes_per_batch * args.examples_per_class
    train = pk_batches((x_train, {n: y_train for n in names}), y_train, args.classes_per_batch,
                       args.examples_per_class, num_batches=max(1, len(y_train) // per_batch), seed=seed)
    _common.fit(model, train, args.epochs)
    predictions = model.predict(x_test, batch_size=64, verbose=0)
    results = {}
    if "breed" in names:
        results["breed_accuracy"] = float(np.mean(np.argmax(predictions["breed"], -1) == y_test))
    if "verification" in names:
        embeddings = predictions["verification"]
    else:
        features = keras.Model(model.inputs, model.get_layer("breed_pool").output)
        embeddings = features.predict(x_test, batch_size=64, verbose=0)
    results.update(verification_metrics(embeddings, y_test))
    return results


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], epochs=40, batch_size=24)
    p.add_argument("--image-size", type=int, default=64, help="a multiple of 8")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (--seed is the first)")
    p.add_argument("--loss", choices=("contrastive", "triplet"), default="contrastive")
    p.add_argument("--mining", choices=("batch_all", "batch_hard"), default="batch_all",
                   help="the triplet loss's mining")
    p.add_argument("--margin", type=float, default=None,
                   help="default 1.0 (contrastive) or 0.2 (triplet), on unit-norm embeddings")
    p.add_argument("--embedding", type=int, default=32, help="embedding size")
    p.add_argument("--classes-per-batch", type=int, default=3, help="P (the sample has 3 breeds)")
    p.add_argument("--weighting", default="equal")
    p.add_argument("--max-examples", type=int, default=None, help="a random subset of each split")
    args = p.parse_args(argv)
    if args.batch_size % args.classes_per_batch:
        p.error(f"--batch-size {args.batch_size} must be a multiple of --classes-per-batch "
                f"{args.classes_per_batch} (a batch holds K examples of each of P classes)")
    args.examples_per_class = args.batch_size // args.classes_per_batch
    if args.margin is None:
        args.margin = 1.0 if args.loss == "contrastive" else 0.2
    path = _common.data_folder("oxford_pets_sample", args.data)
    data = [arrays(path, split, args.image_size, args.max_examples, args.seed)
            for split in ("trainval", "test")]
    alone = {}

    def trained(setting, seed):
        alone[setting, seed] = run(setting, data, args, seed)
        return alone[setting, seed]

    def single_task(seed):
        """Each task's metrics from the model trained on it alone."""
        metrics = {s: alone.get((s, seed)) or _common.finished_run(args, s, seed)
                   for s in ("identification", "verification")}
        return {"breed_accuracy": metrics["identification"]["breed_accuracy"],
                **{k: metrics["verification"][k] for k in ("verification_auc", "recall_at_1")}}

    runs = {setting: functools.partial(trained, setting) for setting in SETTINGS}
    runs["single-task"] = single_task
    loss = f"triplet ({args.mining})" if args.loss == "triplet" else "contrastive"
    summary = _common.compare(
        args, f"Oxford Pets sample, test split; {loss} loss, margin {args.margin}, {args.epochs} epochs",
        runs, lower_is_better=set(), baseline={"single-task": "single-task", "both": "single-task"},
        compared=["breed_accuracy", "verification_auc", "recall_at_1"])
    print("(identification alone is verified with its pooled trunk features; single-task: breed accuracy of "
          "identification alone, verification of verification alone)")
    return {setting: {m: (v["mean"], v["std"]) for m, v in summary[setting]["metrics"].items()}
            for setting in SETTINGS}


if __name__ == "__main__":
    main()
