"""AGV patrol inspection: sim, patrol controller, detector, mapper and mission coordinator.

    ros2 launch anomaly_inspection agv_patrol_inspection.launch.py [scenario:=NAME] [output_dir:=DIR] [params_file:=FILE]

Nodes and parameters come from anomaly_inspection_ros.missions, the same description that
`anomaly-inspection mission agv` runs in the pip environment.
"""

from anomaly_inspection_ros.launch_support import mission_launch_description


def generate_launch_description():
    return mission_launch_description("agv")
