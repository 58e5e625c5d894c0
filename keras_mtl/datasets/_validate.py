"""Checks of what the dataset loaders read: each error says `file:line: what was
wrong, what was expected`."""

import math
import os

import numpy as np


def error(file, line, problem, expected):
    """The `ValueError` for a bad value at `file:line` (`line` None for a whole file)."""
    where = file if line is None else f"{file}:{line}"
    return ValueError(f"{where}: {problem}; expected {expected}.")


def field_count(fields, count, file, line, layout):
    """Checks that a line has `count` fields; `layout` describes them."""
    if len(fields) != count:
        raise error(file, line, f"{len(fields)} fields", f"{count}: {layout}")


def number(text, file, line, name, expected="a finite number"):
    """`text` as a finite float."""
    value = _float_or_nan(text)
    if not math.isfinite(value):
        raise error(file, line, f"{name} is {text!r}", expected)
    return value


def integer(text, file, line, name, low, high=None):
    """`text` as an int in `[low, high]` (no upper bound when `high` is None)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise error(file, line, f"{name} is {text!r}", expected)
    return value


def path_inside(root, relative, file, line):
    """`root` joined with `relative` (`/` or `\\` separated), which must stay inside
    `root`."""
    parts = relative.replace("\\", "/").split("/")
    full = os.path.normpath(os.path.join(root, *parts))
    root = os.path.normpath(root)
    if not relative or os.path.isabs(relative) or os.path.commonpath([root, full]) != root or full == root:
        raise error(file, line, f"the path {relative!r} leads outside {root}",
                    "a relative path to a file in that folder")
    return full


def file_name(text, file, line, name):
    """Checks that `text` is a plain file name (no folder, not `.` or `..`)."""
    if not text or text in (".", "..") or "/" in text or "\\" in text:
        raise error(file, line, f"{name} is {text!r}", "a file name without folders")
    return text


def not_empty(count, file, expected):
    if count == 0:
        raise error(file, None, "no examples", expected)


def column(values, valid, file, lines, name, expected):
    """Checks a whole column at once: `valid` is a boolean array over `values`;
    `lines[i]` is the line number of `values[i]`."""
    bad = np.flatnonzero(~np.asarray(valid))
    if len(bad):
        i = bad[0]
        raise error(file, lines[i], f"{name} is {str(values[i])!r}", expected)


def number_column(values, file, lines, name, minimum=None):
    """A column of strings as float64, all finite and at least `minimum`."""
    try:
        numbers = values.astype("float64")
    except ValueError:
        numbers = np.array([_float_or_nan(v) for v in values])
    valid = np.isfinite(numbers)
    if minimum is not None:
        valid &= numbers >= minimum
    column(values, valid, file, lines, name,
           "a finite number" + ("" if minimum is None else f" >= {minimum}"))
    return numbers


def _float_or_nan(text):
    try:
        return float(text)
    except ValueError:
        return math.nan
