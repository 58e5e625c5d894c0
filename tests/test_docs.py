"""Every Python code block of README.md and docs/*.md runs, with small data.

The blocks of one file run in order in one namespace (a guide builds on its earlier
blocks), in a temporary folder, with the Scenes generators capped at `SMALL` images,
`fit` at one epoch and tensorflow-datasets mocked (`tfds.testing.mock_data`: random
values with each data set's real features, offline). A block preceded by
`<!-- not-run: reason -->` is an illustrative fragment and is skipped; one preceded by
`<!-- slow: reason -->` runs only in the slow tier, which runs every block of the file.
"""

import functools
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SMALL = 64
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"<!--\s*(not-run|slow):\s*\S.*?-->\s*$")


def blocks(path):
    """`[(line, code, mark)]`: the file's Python blocks, `mark` None, "not-run" or "slow"."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        found.append((text.count("\n", 0, match.start()) + 2, match.group(1), mark and mark.group(1)))
    return found


def _capped(function, argument="num_examples"):
    @functools.wraps(function)
    def small(*args, **kwargs):
        if args:
            args = (min(args[0], SMALL),) + args[1:]
        elif argument in kwargs:
            kwargs[argument] = min(kwargs[argument], SMALL)
        else:
            kwargs[argument] = SMALL
        return function(*args, **kwargs)
    return small


def run_blocks(path, tmp_path, monkeypatch, include_slow):
    import tensorflow_datasets as tfds

    import keras_mtl

    scenes_module = sys.modules["keras_mtl.datasets.scenes"]

    for name in ("scenes", "scenes_arrays"):
        small = _capped(getattr(scenes_module, name))
        monkeypatch.setattr(scenes_module, name, small)
        monkeypatch.setattr(keras_mtl.datasets, name, small)
    fit = keras_mtl.MultiTaskModel.fit

    def one_epoch(self, *args, **kwargs):
        kwargs["epochs"] = min(kwargs.get("epochs", 1), 1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras_mtl.MultiTaskModel, "fit", one_epoch)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    ran = 0
    with tfds.testing.mock_data(num_examples=8):
        for line, code, mark in blocks(path):
            if mark == "not-run" or (mark == "slow" and not include_slow):
                continue
            exec(compile(code, f"{path.relative_to(ROOT)}:{line}", "exec"), namespace)
            ran += 1
    return ran


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch):
    if not any(mark is None for _, _, mark in blocks(path)):
        pytest.skip(f"{path.name} has no fast Python block")
    run_blocks(path, tmp_path, monkeypatch, include_slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in FILES if any(mark == "slow" for _, _, mark in blocks(p))],
                         ids=lambda p: p.name)
def test_code_blocks_run_with_the_slow_ones(path, tmp_path, monkeypatch):
    run_blocks(path, tmp_path, monkeypatch, include_slow=True)


def test_the_readme_first_example_is_examples_quickstart():
    first = blocks(ROOT / "README.md")[0][1]
    script = (ROOT / "examples" / "quickstart.py").read_text()
    assert script.startswith('"""')
    assert script[script.index('"""', 3) + 3:].lstrip("\n") == first


def test_a_broken_block_fails_and_a_marked_fragment_is_skipped(tmp_path, monkeypatch):
    guide = tmp_path / "guide.md"
    guide.write_text("Text.\n\n```python\nvalue = 1\n```\n\n<!-- not-run: a fragment -->\n```python\n"
                     "undefined_name\n```\n\n```python\nassert value == 2, 'stale'\n```\n")
    assert [mark for _, _, mark in blocks(guide)] == [None, "not-run", None]
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="stale") as failure:
        run_blocks(guide, tmp_path, monkeypatch, include_slow=False)
    assert "guide.md:13" in str(failure.getrepr())  # the block's first line
