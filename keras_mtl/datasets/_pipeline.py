"""tf.data steps shared by the image dataset loaders."""

from keras_mtl._tensorflow import LazyTensorFlow

tf = LazyTensorFlow("The image datasets' tf.data pipelines (keras_mtl.datasets)")


def cached(ds, cache):
    """`cache`: True caches in memory, a file name caches there, False not at all."""
    if cache is True:
        return ds.cache()
    return ds.cache(cache) if cache else ds


def shuffled_with_seeds(ds, size, seed):
    """Shuffles `ds` anew each epoch and pairs each element with a fresh stateless
    random seed (shape (2,), for its augmentation): elements `(element, seed)`."""
    ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(ds, seeds)
