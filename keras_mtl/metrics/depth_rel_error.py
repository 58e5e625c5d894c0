"""Mean relative depth error."""

import keras

from keras_mtl.metrics.depth_abs_error import depth_errors
from keras_mtl.metrics.pixel_mean import PixelMean


@keras.saving.register_keras_serializable(package="keras_mtl")
class DepthRelError(PixelMean):
    """`mean |prediction - label| / label` over all valid depth pixels of the epoch
    (MTAN's "Rel Err", Liu et al., CVPR 2019; Eigen et al., NIPS 2014). Labels that
    are 0, negative or not finite are missing depth and not counted.
    """

    def __init__(self, name="rel_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def pixel_values(self, y_true, y_pred):
        errors, y_true, valid = depth_errors(y_true, y_pred)
        return errors / y_true, valid
