"""The scalar argument checks: bounds, open and closed ends, None, types, and the messages."""

import math
import re

import numpy as np
import pytest

from torchscope.backend import check_choice, check_int, check_real


def test_int_accepts_and_converts():
    assert check_int("n", 5, 1) == 5
    assert type(check_int("n", np.int64(5), 1)) is int
    assert check_int("n", 1, 1, 3) == 1 and check_int("n", 3, 1, 3) == 3  # closed ends
    assert check_int("n", -7) == -7  # no bounds
    assert check_int("n", None, 1, allow_none=True) is None
    assert check_int("size", 255, 3, 255, odd=True) == 255


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("n", 0, 1), {}, "n must be an integer >= 1, got 0"),
    (("n", 4, None, 3), {}, "n must be an integer <= 3, got 4"),
    (("n", 4, 1, 3), {}, "n must be an integer in [1, 3], got 4"),
    (("size", 10, 3, 255), {"odd": True}, "size must be an odd integer in [3, 255], got 10"),
    (("k", 0, 1), {"allow_none": True}, "k must be an integer >= 1 or None, got 0"),
])
def test_int_out_of_range(args, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_int(*args, **kwargs)


@pytest.mark.parametrize(("value", "given"), [
    (2.0, "float 2.0"), (True, "bool True"), ("3", "str '3'"), (None, "NoneType None"),
])
def test_int_wrong_type(value, given):
    with pytest.raises(TypeError, match=f"^n must be an integer >= 1, got {re.escape(given)}$"):
        check_int("n", value, 1)
    # some modules raise ValueError for every bad value: the caller chooses
    with pytest.raises(ValueError, match="^n must be an integer >= 1, got"):
        check_int("n", value, 1, type_error=ValueError)


def test_real_accepts_and_converts():
    assert check_real("x", 0, 0, 1) == 0.0 and check_real("x", 1, 0, 1) == 1.0  # closed ends
    assert type(check_real("x", np.float32(0.5), 0, 1)) is float
    assert type(check_real("x", 3, 0, 5)) is float
    assert check_real("x", -1e300) == -1e300  # no bounds: any finite number
    assert check_real("x", None, allow_none=True) is None
    assert check_real("x", math.inf, 0, math.inf) == math.inf  # a closed infinite end


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (0.0, {"low": 0, "high": 1, "low_open": True}, "x must be in (0, 1], got 0.0"),
    (1.0, {"low": 0, "high": 1, "high_open": True}, "x must be in [0, 1), got 1.0"),
    (-0.5, {"low": 0}, "x must be in [0, inf), got -0.5"),
    (2.5, {"high": 2}, "x must be in (-inf, 2], got 2.5"),
    (math.inf, {"low": 0}, "x must be in [0, inf), got inf"),  # None: an open end, finite
    (-math.inf, {}, "x must be in (-inf, inf), got -inf"),
    (math.nan, {"low": 0, "high": math.inf}, "x must be in [0, inf], got nan"),
    (3, {"low": 0.5, "high": 2.0, "allow_none": True}, "x must be in [0.5, 2] or None, got 3.0"),
])
def test_real_out_of_range(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_real("x", value, **kwargs)


@pytest.mark.parametrize(("value", "given"), [
    (True, "bool True"), ("0.5", "str '0.5'"), (1j, "complex 1j"), ([0.5], "list [0.5]"),
])
def test_real_wrong_type(value, given):
    message = f"x must be a real number in (0, 1], got {given}"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        check_real("x", value, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        check_real("x", value, 0, 1, low_open=True, type_error=ValueError)


def test_choice():
    assert check_choice("mode", "wrap", ("reflect", "wrap")) == "wrap"
    assert check_choice("refinement", None, (None, "adam")) is None
    with pytest.raises(ValueError, match=re.escape("mode must be one of ('reflect', 'wrap'), "
                                                   "got 'full'")):
        check_choice("mode", "full", ("reflect", "wrap"))
    with pytest.raises(ValueError, match="mode must be one of"):
        check_choice("mode", np.array(["wrap"]), ("reflect", "wrap"))  # not a single option
    with pytest.raises(ValueError, match="mode must be one of"):
        check_choice("mode", ["wrap"], ("reflect", "wrap"))
