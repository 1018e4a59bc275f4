"""The mission stops an inspection pass that travels far beyond the taught route, and ends a pass on its own driver status."""

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


def test_a_pass_ends_on_done_only_after_it_ran():
    from anomaly_inspection_ros.mission_node import pass_ended

    assert not pass_ended("done", has_run=False)  # the last status of the pass before
    assert not pass_ended("running", has_run=True)
    assert pass_ended("done", has_run=True)
    assert pass_ended("aborted", has_run=False)  # a driver that fails at once still ends it


def test_teach_passes_must_be_at_least_one():
    from anomaly_inspection_ros.mission_node import MissionNodeConfig

    assert MissionNodeConfig(teach_passes=2).teach_passes == 2
    with pytest.raises(ValueError, match="teach_passes"):
        MissionNodeConfig(teach_passes=0)
