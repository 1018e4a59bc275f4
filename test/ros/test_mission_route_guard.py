"""The mission stops an inspection pass that travels far beyond the taught route."""

import math

import pytest

from anomaly_inspection_ros.mission_node import route_exceeded


def test_within_the_taught_route_is_fine():
    assert route_exceeded(19.2, 19.1, 1.5, 3.0) is None
    assert route_exceeded(31.6, 19.1, 1.5, 3.0) is None  # 1.5 x 19.1 + 3 = 31.65


def test_far_beyond_the_taught_route_is_reported():
    why = route_exceeded(31.7, 19.1, 1.5, 3.0)
    assert why is not None and "31.7 m" in why and "19.1 m" in why


@pytest.mark.parametrize("travelled, taught, factor", [
    (100.0, None, 1.5),  # no teach pass: nothing to compare with
    (None, 10.0, 1.5),  # the driver does not report a distance
    (math.nan, 10.0, 1.5),
    (100.0, 10.0, 0.0),  # switched off
])
def test_no_verdict_without_a_reference(travelled, taught, factor):
    assert route_exceeded(travelled, taught, factor, 3.0) is None
