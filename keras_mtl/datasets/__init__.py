"""Dataset loaders.

`scenes(...)` (a `tf.data.Dataset`) and `scenes_arrays(...)` (numpy) generate the
procedural Scenes data; the other loaders read real data sets from a local folder.
"""

from keras_mtl.datasets.scenes import scenes, scenes_arrays

__all__ = ["scenes", "scenes_arrays"]
