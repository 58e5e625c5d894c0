"""Softmax classification and a triplet loss on L2-normalised features, for
fine-grained recognition (Zhang et al., CVPR 2016; Hermans et al. 2017)."""

import functools

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.backbones.conv import conv
from keras_mtl.zoo.registry import register


@register("triplet_softmax")
def triplet_softmax(input_shape=(64, 64, 3), classes=3, embedding=32, filters=(16, 32, 64), mining="batch_hard",
                    margin=0.2, learning_rate=1e-3, compiled=True):
    """A fine-grained classifier trained jointly with a triplet loss on L2-normalised
    embeddings of the same trunk: a softmax over the classes and a metric-learning
    task, as in Zhang, Zhou, Lin and Zhang, "Embedding Label Structures for
    Fine-Grained Feature Representation", CVPR 2016, with the batch-hard mining of
    Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017.

    As in those papers: softmax cross-entropy and a triplet loss with margin 0.2 on
    unit-norm embeddings, the triplets mined within P x K batches, both losses summed
    with equal weights. Not as in them: a small conv trunk (`keras_mtl.backbones.conv`
    with `filters`, no batch norm) trained from scratch instead of an ImageNet
    GoogLeNet / ResNet-50, and the label-structure (hierarchy) terms of Zhang et al.
    are left out. Labels: class indices for both tasks; train on
    `keras_mtl.datasets.pk_batches`. Trained by `applications/oxford_pets_metric.py
    --loss triplet`.

    Returns:
        A `MultiTaskModel`, compiled (Adam, equal weights) unless `compiled=False`.
    """
    tasks = [presets.classification("class", classes, pool=True),
             presets.verification("embedding", embedding=embedding, loss="triplet", mining=mining, margin=margin)]
    model = build("hard_sharing", tasks, backbone=functools.partial(conv, filters=filters, batch_norm=False),
                  input_shape=input_shape, name="triplet_softmax")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), weighting="equal")
    return model
