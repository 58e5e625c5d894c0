"""DeepID2: joint face identification and verification (Sun et al., NIPS 2014)."""

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.zoo.registry import register


def deepid2_trunk(input_shape, filters=(16, 32, 48, 64), features=160):
    """DeepID2's shape: four conv layers (max pooling after the first three), and the
    DeepID2 layer, `features` ReLU units fully connected to both the third pooling
    layer and the fourth conv layer (the paper's multi-scale features)."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i == 3:
            third = keras.layers.Flatten(name="pool3_flat")(keras.layers.MaxPooling2D(2, name="pool3")(x))
            x = keras.layers.MaxPooling2D(2, name="pool3_for_conv4")(x)
        elif i < 3:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    fourth = keras.layers.Flatten(name="conv4_flat")(x)
    joined = keras.layers.Concatenate(name="multi_scale")([third, fourth])
    x = keras.layers.Dense(features, activation="relu", name="deepid2")(joined)
    return keras.Model(inputs, x, name="deepid2_trunk")


@register("deepid2")
def deepid2(input_shape=(32, 32, 3), identities=10, filters=(16, 32, 48, 64), features=160, verification_weight=0.05,
            margin=1.0, learning_rate=1e-3, compiled=True):
    """Face identification and verification on one feature (Sun, Chen, Wang and Tang,
    "Deep Learning Face Representation by Joint Identification-Verification", NIPS
    2014).

    As in the paper: the DeepID2 feature (160 units, fully connected to the last two
    conv stages) is read by both tasks: `identification`, a softmax over the
    training identities, and `verification`, the feature itself under the
    contrastive loss of Eq. 2 on all pairs of a batch, weighted by lambda = 0.05
    (`verification_weight`); pair ROC-AUC and recall@1 as metrics. Not as in the
    paper: 3x3 convolutions of `filters` with plain max pooling (the paper: 4x4, 3x3
    and 2x2 convolutions, locally shared weights in the upper layers, on 55 x 47
    face patches, 25 patches and an ensemble), a fixed margin `m` (the paper updates
    it from the distances), Adam instead of SGD. Labels: identity indices for both
    tasks; train on P x K batches (`keras_mtl.datasets.pk_batches`). Trained (with
    the embedding head of `keras_mtl.tasks.verification`) by
    `applications/oxford_pets_metric.py`, on breeds as identities.

    Returns:
        A `MultiTaskModel`, compiled (Adam; fixed weights 1 and `verification_weight`)
        unless `compiled=False`.
    """
    verification = presets.verification(loss="contrastive", margin=margin, loss_weight=verification_weight)
    tasks = [presets.classification("identification", identities),
             verification.with_head([])]
    model = build("hard_sharing", tasks, backbone=lambda shape: deepid2_trunk(shape, filters, features),
                  input_shape=input_shape, name="deepid2")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model
