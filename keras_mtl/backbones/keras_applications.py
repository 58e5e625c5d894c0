"""`keras.applications` models as backbones: ResNet50V2, MobileNetV3Small and Large,
EfficientNetV2B0, by name, without their classification top.

keras-hub backbones are not registered: keras-hub depends on the full `tensorflow`
wheel and `tensorflow-text` (beside `tensorflow-cpu`), too heavy a dependency for
this library; a keras-hub backbone is a Keras model and works as `backbone=model`.
"""

import keras

from keras_mtl.backbones.registry import register, renamed_copy

# name: (keras.applications class, taps shallow to deep at output strides 2, 4, 8,
# 16, 32 (MobileNetV3Small: 4 to 32): the last block output at each resolution).
MODELS = {
    "resnet50v2": ("ResNet50V2", ("conv1_conv", "conv2_block2_out", "conv3_block3_out", "conv4_block5_out",
                                  "post_relu")),
    "mobilenetv3small": ("MobileNetV3Small", ("expanded_conv_project_bn", "expanded_conv_2_add",
                                              "expanded_conv_7_add", "expanded_conv_10_add")),
    "mobilenetv3large": ("MobileNetV3Large", ("expanded_conv_add", "expanded_conv_2_add", "expanded_conv_5_add",
                                              "expanded_conv_11_add", "expanded_conv_14_add")),
    "efficientnetv2b0": ("EfficientNetV2B0", ("block1a_project_bn", "block2b_add", "block3b_add", "block5e_add",
                                              "top_activation")),
}


def _constructor(name, class_name):
    def backbone(input_shape, weights=None, prefix="", **options):
        if weights == "imagenet":
            raise ValueError(
                f"backbone {name!r}: keras_mtl never downloads weights. Pass weights=None or the path of "
                f"a weights file of keras.applications.{class_name}(include_top=False). Received: "
                f"weights='imagenet'")
        model = getattr(keras.applications, class_name)(include_top=False, weights=weights,
                                                        input_shape=tuple(input_shape), **options)
        if not prefix:
            return model
        copy = renamed_copy(model, prefix)
        if weights is not None:
            copy.set_weights(model.get_weights())
        return copy

    backbone.__name__ = name
    backbone.__doc__ = (
        f"`keras.applications.{class_name}` without its top: the trunk's output is its last "
        f"feature map. Taps (`backbones.taps({name!r})`): the last block output at each "
        "resolution, shallow to deep.\n\n"
        "    Args:\n"
        "        input_shape: image shape `(H, W, 3)` (at least 32 x 32); inputs as the Keras "
        "model expects them (MobileNetV3 and EfficientNetV2 rescale 0-255 inside by default).\n"
        "        weights: None (random initialisation) or the path of a weights file of the "
        "model without its top; never downloaded.\n"
        "        prefix: prefix for layer names (a copy per task or expert, with the same "
        "weights when a file is given).\n"
        f"        **options: other arguments of `keras.applications.{class_name}`.")
    return backbone


for _name, (_class_name, _taps) in MODELS.items():
    register(_name, taps=_taps)(_constructor(_name, _class_name))
