"""The private Keras access keras_mtl needs, isolated in `keras_mtl/_private.py`: each
helper's result on small functional models (nested ones too), the public replacements
used elsewhere, the Keras version the helpers were checked on, and that no other
module reaches into Keras' or TensorFlow's private modules or attributes."""

import pathlib
import re

import keras
import numpy as np
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from keras_mtl import _private
from keras_mtl.graph import is_functional
from keras_mtl.weighting import RLW, GradNorm, GradVac

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_mtl"


def _inner():
    """A nested functional model: one Dense layer."""
    i = keras.Input((3,), name="inner_in")
    return keras.Model(i, keras.layers.Dense(3, name="inner_dense")(i), name="inner")


def _model():
    """x -> a -> inner -> shared -> concat([shared(a), shared(inner)]) -> split -> add:
    a shared layer called twice, a nested model, a multi-input layer, a layer
    called with a keyword argument, and an op with two outputs."""
    x = keras.Input((4,), name="x")
    a = keras.layers.Dense(3, name="a")(x)
    b = _inner()(a)
    shared = keras.layers.Dense(3, name="shared")
    s1, s2 = shared(a), shared(b)
    c = keras.layers.Concatenate(name="concat")([s1, s2])
    d = keras.layers.Dropout(0.5, name="drop")(c, training=False)
    left, right = keras.ops.split(d, 2, axis=-1)
    out = keras.layers.Add(name="add")([left, right])
    return keras.Model(x, {"out": out, "mid": s1}, name="outer")


def test_keras_is_the_version_private_was_checked_on():
    pin = re.search(r'"keras([<>=!~][^"]*)"', (ROOT / "setup.py").read_text()).group(1)
    doc = _private.__doc__
    assert f"Keras {pin}" in " ".join(doc.split()), (
        f"setup.py pins keras{pin}; keras_mtl/_private.py's docstring must name the range "
        "its private Keras access was checked on: check each helper, then update both.")
    assert Version(keras.__version__) in SpecifierSet(pin), (
        f"Keras {keras.__version__} is outside keras{pin}, the range keras_mtl/_private.py's "
        "private Keras access was checked on: check each helper there against this Keras.")


def test_graph_nodes_are_every_call_in_an_order_that_runs():
    model = _model()
    nodes = _private.graph_nodes(model)
    names = [n.operation.name for n in nodes]
    assert sorted(names) == sorted(["a", "inner", "shared", "shared", "concat", "drop", "split", "add"])
    assert not any(n.is_input for n in nodes)
    position = {id(n): i for i, n in enumerate(nodes)}
    for i, node in enumerate(nodes):
        parents = [p for p in node.parent_nodes if not p.is_input]
        assert all(position[id(p)] < i for p in parents), node
    assert [p.operation.name for p in nodes[names.index("concat")].parent_nodes] == ["shared", "shared"]
    inner = next(n.operation for n in nodes if n.operation.name == "inner")
    assert [n.operation.name for n in _private.graph_nodes(inner)] == ["inner_dense"]


def test_chain_nodes_come_in_call_order():
    x = keras.Input((2,))
    y = x
    for name in ("first", "second", "third"):
        y = keras.layers.Dense(2, name=name)(y)
    nodes = _private.graph_nodes(keras.Model(x, y))
    assert [n.operation.name for n in nodes] == ["first", "second", "third"]


def test_replaying_the_nodes_with_call_node_computes_the_model():
    model = _model()
    data = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    computed = {id(model.inputs[0]): keras.ops.convert_to_tensor(data)}
    for node in _private.graph_nodes(model):
        out = _private.call_node(node, computed)
        for ref, new in zip(node.outputs, keras.tree.flatten(out)):
            computed[id(ref)] = new
    replayed = keras.tree.map_structure(lambda t: computed[id(t)], model.output)
    expected = model(data)
    assert set(replayed) == {"out", "mid"}
    for key in expected:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(replayed[key]),
                                   keras.ops.convert_to_numpy(expected[key]), rtol=1e-6, atol=1e-6)


def test_call_node_passes_the_keyword_arguments_of_the_call():
    x = keras.Input((50,))
    y = keras.layers.Dropout(0.9, name="drop")(x, training=True)
    (node,) = _private.graph_nodes(keras.Model(x, y))
    ones = np.ones((4, 50), "float32")
    out = keras.ops.convert_to_numpy(_private.call_node(node, {id(x): keras.ops.convert_to_tensor(ones)}))
    assert (out == 0).mean() > 0.5  # dropped at rate 0.9: the call's training=True reached the layer


def test_producer_names_the_call_and_output_position():
    model = _model()
    node, index = _private.producer(model.output["out"])
    assert (node.operation.name, index) == ("add", 0)
    node, index = _private.producer(model.output["mid"])
    assert node.operation.name == "shared" and index == 0
    assert _private.producer(node.input_tensors[0])[0].operation.name == "a"
    split = next(n for n in _private.graph_nodes(model) if n.operation.name == "split")
    assert [_private.producer(t) for t in split.outputs] == [(split, 0), (split, 1)]
    second = next(n for n in _private.graph_nodes(model) if n.operation.name == "concat").input_tensors[1]
    node, _ = _private.producer(second)
    assert node.operation.name == "shared"
    assert _private.producer(node.input_tensors[0])[0].operation.name == "inner"  # the second call
    node, _ = _private.producer(model.inputs[0])
    assert node.is_input and node.operation.name == "x"


def test_producer_inside_a_nested_model():
    inner = _model().get_layer("inner")
    node, index = _private.producer(inner.outputs[0])
    assert (node.operation.name, index) == ("inner_dense", 0)
    assert _private.producer(node.input_tensors[0])[0].is_input


def test_consumers_lists_the_reading_calls():
    model = _model()
    assert [op.name for op in _private.consumers(model.get_layer("a"))] == ["inner", "shared"]
    assert [op.name for op in _private.consumers(model.get_layer("shared"))] == ["concat", "concat"]
    assert _private.consumers(model.get_layer("add")) == []
    inner = model.get_layer("inner")
    assert [op.name for op in _private.consumers(inner)] == ["shared"]
    assert _private.consumers(inner.get_layer("inner_dense")) == []


def test_is_functional_is_keras_functional_model():
    x = keras.Input((3,))
    y = keras.layers.Dense(2)(x)

    class Built(keras.Model):
        def __init__(self):
            i = keras.Input((3,))
            super().__init__(i, keras.layers.Dense(2)(i))

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    assert is_functional(keras.Model(x, y)) and is_functional(Built())
    assert not is_functional(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    assert not is_functional(Subclassed())
    assert not is_functional(keras.layers.Dense(2))
    assert not is_functional(keras.Function(x, y))


@pytest.mark.parametrize("outputs", ["list_of_one", "dict", "tensor"])
def test_functional_output_is_the_structure_its_graph_fills(outputs):
    """graph.inline and Column rebuild a backbone's outputs on `model.output`."""
    x = keras.Input((3,))
    y = keras.layers.Dense(2)(x)
    structure = {"list_of_one": [y], "dict": {"y": y}, "tensor": y}[outputs]
    model = keras.Model(x, structure)
    assert keras.tree.flatten(model.output) == [y]
    assert type(model.output) is type(structure)


@pytest.mark.parametrize("method", [RLW, GradVac, GradNorm])
def test_weighting_variables_are_its_weights_then_seed_states(method):
    """A weighting method saves `variables`: its weights, then its seed generators' states."""
    layer = method() if method is GradNorm else method(seed=3)
    layer.build((3,))
    seeds = [layer.seed_generator.state] if hasattr(layer, "seed_generator") else []
    assert [id(v) for v in layer.variables] == [id(v) for v in layer.weights + seeds]
    assert len(layer.variables) == {RLW: 1, GradVac: 2, GradNorm: 3}[method]


# Lines that reach into Keras' or TensorFlow's private modules or attributes. Exempt:
# `_private.py` (the one module for them), the opt-in `compile(fast_dispatch=True)`,
# and the TensorFlow trainer's override of Keras' `_maybe_symbolic_build` (Keras 3.15's
# MultiWorkerMirroredStrategy build; no public hook), whose private names are listed.
_PRIVATE_MODULES = re.compile(r"\b(keras\.src|tensorflow\.python)\b")
_PRIVATE_ATTRIBUTES = re.compile(
    r"\.(_keras_history|_inbound_nodes|_outbound_nodes|_nodes_by_depth|_operations|_inputs_struct"
    r"|_outputs_struct|_seed_generators|_trainable_variables|_non_trainable_variables"
    r"|_flatten_layers|_layers|_tracker|_loss_tracker|_compile_metrics|_compile_loss"
    r"|_compile_config|_distribute_strategy|_symbolic_build|_maybe_symbolic_build"
    r"|_autoconvert_optionals|_call_flat|_in_multi_worker_mode|_jax_state)\b")
_EXEMPT = ("_private.py", "backend/tensorflow/fast_dispatch.py")
_ALLOWED = {"backend/tensorflow/trainer.py": re.compile(
    r"\.(_distribute_strategy|_maybe_symbolic_build|_symbolic_build)\b")}


def _offending_lines(pattern, package=PACKAGE):
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(_EXEMPT):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            allowed = _ALLOWED.get(relative)
            if pattern.search(line) and not (allowed and allowed.search(line)):
                found.append(f"keras_mtl/{relative}:{number}: {line.strip()}")
    return found


def test_only_private_imports_private_keras_and_tensorflow_modules():
    assert _offending_lines(_PRIVATE_MODULES) == []


def test_only_private_reads_private_keras_attributes():
    assert _offending_lines(_PRIVATE_ATTRIBUTES) == []


def test_the_source_check_finds_a_private_import(tmp_path):
    package = tmp_path / "keras_mtl"
    (package / "backend" / "tensorflow").mkdir(parents=True)
    (package / "layers.py").write_text("import keras\nfrom keras.src.ops.node import Node\n")
    (package / "graph.py").write_text("def f(t):\n    return t._keras_history\n")
    (package / "model.py").write_text("def f(m):\n    m._loss_tracker.update_state(1)\n")
    (package / "_private.py").write_text("from keras.src import tree\nx = y._keras_history\n")
    (package / "backend" / "trainer.py").write_text("import tensorflow.python\n")
    (package / "backend" / "tensorflow" / "fast_dispatch.py").write_text(
        "import tensorflow.python\nf._call_flat()\n")
    (package / "backend" / "tensorflow" / "trainer.py").write_text(
        "m._symbolic_build()\nm._compile_metrics\n")
    assert _offending_lines(_PRIVATE_MODULES, package) == [
        "keras_mtl/backend/trainer.py:1: import tensorflow.python",
        "keras_mtl/layers.py:2: from keras.src.ops.node import Node"]
    assert _offending_lines(_PRIVATE_ATTRIBUTES, package) == [
        "keras_mtl/backend/tensorflow/trainer.py:2: m._compile_metrics",
        "keras_mtl/graph.py:2: return t._keras_history",
        "keras_mtl/model.py:2: m._loss_tracker.update_state(1)"]
