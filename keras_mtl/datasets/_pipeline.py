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


# The first bytes of each image format a loader decodes.
_MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG", "gif": b"GIF8", "bmp": b"BM"}


def read_image(file, formats=("jpeg",)):
    """The bytes of the image `file`, checked to be a whole image of one of `formats`
    (its format's first bytes; for a JPEG, the end-of-image marker among its last 32
    bytes): an empty, truncated or corrupt file fails at iteration with an error
    naming it, where the decoder's own error would not."""
    data = tf.io.read_file(file)
    whole = tf.constant(False)
    for name in formats:
        magic = _MAGIC[name]
        ok = tf.strings.substr(data, 0, len(magic)) == magic
        if name == "jpeg":
            size = tf.strings.length(data)
            tail = tf.io.decode_raw(tf.strings.substr(data, tf.maximum(size - 32, 0), 32), tf.uint8)
            ok = ok & tf.reduce_any((tail[:-1] == 0xFF) & (tail[1:] == 0xD9))
        whole = whole | ok
    check = tf.debugging.Assert(whole, [
        "keras_mtl: the image file", file, f"is not a whole {'/'.join(formats)} image (empty, "
        "truncated or corrupt): replace it, or remove it from the dataset"])
    with tf.control_dependencies([check]):
        return tf.identity(data)
