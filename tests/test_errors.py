import math

import pytest

from infomin.errors import SpecError, check_choice, check_int, check_interval, check_range


def test_spec_error_names_field_value_and_choices():
    e = SpecError("views.kind", "rgb2lab", choices=["lab", "yuv"])
    assert str(e) == "views.kind: got 'rgb2lab'; valid choices: 'lab', 'yuv'"
    assert isinstance(e, ValueError)
    assert (e.field, e.value, e.choices) == ("views.kind", "rgb2lab", ["lab", "yuv"])


def test_check_choice():
    assert check_choice("space", "lab", ["lab", "hsv"]) == "lab"
    with pytest.raises(SpecError, match=r"space: got 'hed2'; valid choices: 'lab', 'hsv'"):
        check_choice("space", "hed2", ["lab", "hsv"])


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, math.inf, "0.5", True])
def test_check_range_rejects(value):
    with pytest.raises(SpecError, match=r"^p: got "):
        check_range("p", value, 0.0, 1.0)


def test_check_range_open_bounds():
    assert check_range("tau", 0.1, 0.0, None, low_open=True) == 0.1
    with pytest.raises(SpecError, match=r"\(0.0, inf\]"):
        check_range("tau", 0.0, 0.0, None, low_open=True)


def test_check_int_and_interval():
    assert check_int("epochs", 3, 1) == 3
    with pytest.raises(SpecError, match="expected an integer"):
        check_int("epochs", 2.5, 1)
    assert check_interval("scale", [0.2, 1.0], 0.0, 1.0) == (0.2, 1.0)
    with pytest.raises(SpecError, match="low <= high"):
        check_interval("scale", [0.9, 0.2], 0.0, 1.0)
    with pytest.raises(SpecError, match=r"scale\[1\]"):
        check_interval("scale", [0.2, 1.2], 0.0, 1.0)
