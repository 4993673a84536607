"""Validators for scalar options (integers, real numbers, choices), shared by the science modules.

Each returns the value, converted (``int``, ``float``), or raises with a message that names the
argument, what was given and what is accepted: ``"gamma must be in (0, 1], got 1.5"``. A value
of the wrong type raises ``type_error`` (``TypeError`` unless the caller says otherwise); a value
of the right type outside what is accepted raises ``ValueError``. Bools are never numbers here.

Standard library only: importing these must stay cheap (no torch, see ARCHITECTURE.md).
"""

import math
import numbers
from collections.abc import Hashable


def _or_none(allow_none):
    return " or None" if allow_none else ""


def _got(value):
    return f"{type(value).__name__} {value!r}"


def check_int(name, value, low=None, high=None, *, odd=False, allow_none=False,
              type_error=TypeError):
    """An integer option in ``[low, high]`` (either bound may be None: unbounded), as ``int``.

    ``odd`` also requires an odd value; ``allow_none`` lets None through unchanged.

    Parameters
    ----------
    name : str
        The argument's name, for the error messages.
    value : object
        What the caller passed: any integer (``int``, ``np.int64``...), never a bool.
    low, high : int, optional
        The smallest and largest accepted values, both included; None: no bound on that side.
    odd : bool
        Accept odd values only (a filter's window length, for instance).
    allow_none : bool
        Accept None as well, and return it unchanged.
    type_error : type of Exception
        What to raise for a value that is not an integer (default ``TypeError``).

    Returns
    -------
    int or None
        ``value`` as a plain ``int`` (None only with ``allow_none``).

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a float, a string, a bool...), or ``type_error``
        instead.
    ValueError
        If ``value`` is an integer outside ``[low, high]``, or even where ``odd`` asks for an
        odd one.
    """
    if value is None and allow_none:
        return None
    if low is not None and high is not None:
        span = f" in [{low}, {high}]"
    else:
        span = f" >= {low}" if low is not None else f" <= {high}" if high is not None else ""
    accepted = f"{'an odd integer' if odd else 'an integer'}{span}{_or_none(allow_none)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise type_error(f"{name} must be {accepted}, got {_got(value)}")
    value = int(value)
    if ((low is not None and value < low) or (high is not None and value > high)
            or (odd and value % 2 == 0)):
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return value


def check_real(name, value, low=None, high=None, *, low_open=False, high_open=False,
               allow_none=False, type_error=TypeError):
    """A real option in the interval from ``low`` to ``high``, as ``float``.

    The ends are closed unless ``low_open`` / ``high_open``. A bound of None is an open infinite
    end, so the default accepts every finite number; ``high=math.inf`` (closed) also accepts
    ``inf``. NaN is never accepted. ``allow_none`` lets None through unchanged.

    Parameters
    ----------
    name : str
        The argument's name, for the error messages.
    value : object
        What the caller passed: any real number (``int``, ``float``, numpy scalars,
        ``fractions.Fraction``...), never a bool.
    low, high : float, optional
        The ends of the accepted interval; None: unbounded on that side.
    low_open, high_open : bool
        Exclude ``low`` / ``high`` themselves (``low=0, low_open=True``: strictly positive).
    allow_none : bool
        Accept None as well, and return it unchanged.
    type_error : type of Exception
        What to raise for a value that is not a real number (default ``TypeError``).

    Returns
    -------
    float or None
        ``value`` as a plain ``float`` (None only with ``allow_none``).

    Raises
    ------
    TypeError
        If ``value`` is not a real number (a complex number, a string, a bool...), or
        ``type_error`` instead.
    ValueError
        If ``value`` is NaN or outside the interval.
    """
    if value is None and allow_none:
        return None
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    lo_open = low_open or low is None
    hi_open = high_open or high is None
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise type_error(f"{name} must be a real number in {interval}{_or_none(allow_none)}, "
                         f"got {_got(value)}")
    value = float(value)
    if not ((value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)):
        raise ValueError(f"{name} must be in {interval}{_or_none(allow_none)}, got {value!r}")
    return value


def check_choice(name, value, choices):
    """One of ``choices`` (compared with ``==``; arrays and other unhashable values are refused).

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : object
        What the caller passed.
    choices : collection
        The accepted values (a tuple, a set, the keys of a dict...); the error message lists
        them.

    Returns
    -------
    object
        ``value`` itself, unchanged.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``choices``, or is unhashable (a list, an array).
    """
    if not isinstance(value, Hashable) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_rng(rng, name="rng"):
    """A ``numpy.random.Generator`` from a seed, a bit generator, a generator or None.

    Parameters
    ----------
    rng : None, int, sequence of int, SeedSequence, BitGenerator or Generator
        None: fresh entropy from the operating system; a non-negative integer seed (or a
        sequence of them) or a SeedSequence: a reproducible stream; a BitGenerator: a
        Generator around it; a Generator: returned as it is (its state is shared, not copied).
    name : str
        The argument's name, for the error messages.

    Returns
    -------
    numpy.random.Generator
        ``numpy.random.default_rng(rng)``.

    Raises
    ------
    TypeError
        If ``rng`` is a bool (True would otherwise seed like 1) or anything else that
        ``numpy.random.default_rng`` refuses (a float, a string, a negative seed inside a
        sequence...).
    ValueError
        If ``rng`` is a negative integer.
    """
    import numpy as np

    if isinstance(rng, (bool, np.bool_)):  # True would seed like 1: never a number here
        raise TypeError(f"{name} must be None, a non-negative integer seed or a "
                        f"numpy.random.Generator, got {_got(rng)}")
    if isinstance(rng, numbers.Integral) and rng < 0:
        raise ValueError(f"{name} must be a non-negative integer seed, got {rng}")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be None, a non-negative integer seed or a "
                        f"numpy.random.Generator, got {_got(rng)}") from None
