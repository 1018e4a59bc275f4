"""Manipulator multi-view inspection: sim (arm + wrist camera), capture, detector, mapper, coordinator.

    ros2 launch anomaly_inspection manipulator_inspection.launch.py [scenario:=NAME] [output_dir:=DIR] [params_file:=FILE]

Nodes and parameters come from anomaly_inspection_ros.missions, the same description that
`anomaly-inspection mission manipulator` runs in the pip environment.
"""

from anomaly_inspection_ros.launch_support import mission_launch_description


def generate_launch_description():
    return mission_launch_description("manipulator")
