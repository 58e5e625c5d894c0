"""SavedModel export with one named output per task."""


def export(model, path):
    """Writes a TensorFlow SavedModel whose `serving_default` signature takes the
    model's inputs and returns a dict of outputs keyed by task name.

    Serving needs only TensorFlow: `tf.saved_model.load(path).signatures["serving_default"]`.
    """
    model.export(path, format="tf_saved_model", verbose=False)
    return path
