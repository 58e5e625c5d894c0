"""Checks of constructor arguments, with errors that name the argument."""

import math
import numbers


def check_float(name, value, minimum=None, above=None, maximum=None, below=None):
    """Returns `value` as a float if it is a finite real number within the bounds
    (`minimum <= value`, `above < value`, `value <= maximum`, `value < below`);
    otherwise raises an error naming the argument `name`.

    Example: `self.temperature = check_float("temperature", temperature, above=0)`
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number. Received: {name}={value!r}")
    bounds = [(minimum, ">=", lambda b: value >= b), (above, ">", lambda b: value > b),
              (maximum, "<=", lambda b: value <= b), (below, "<", lambda b: value < b)]
    if not math.isfinite(value) or not all(ok(b) for b, _, ok in bounds if b is not None):
        wanted = " and ".join(f"{sign} {bound}" for bound, sign, _ in bounds if bound is not None)
        raise ValueError(f"{name} must be a finite number {wanted}".rstrip()
                         + f". Received: {name}={value!r}")
    return float(value)


def check_int(name, value, minimum=None):
    """Returns `value` as an int if it is an integer `>= minimum` (when given);
    otherwise raises an error naming the argument `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_seed(seed):
    """Returns a `seed` argument (an int or None) checked."""
    return None if seed is None else check_int("seed", seed)


def check_floats(name, values, minimum=None):
    """Returns `values` (a list or tuple of numbers, or None) as a list of floats,
    each checked as `check_float` does with `name[i]` in its error."""
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of numbers or None. Received: {name}={values!r}")
    return [check_float(f"{name}[{i}]", value, minimum=minimum) for i, value in enumerate(values)]


def check_task_count(method, name, values, num_tasks):
    """Raises an error naming the method and `name` unless `values` (None or a list)
    has one entry per task."""
    if values is not None and len(values) != num_tasks:
        raise ValueError(f"{type(method).__name__} has {num_tasks} tasks but {len(values)} values of "
                         f"{name}. Received: {name}={values!r}")
