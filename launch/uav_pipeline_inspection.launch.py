"""UAV pipeline inspection: sim, pipeline tracker, detector, mapper and mission coordinator.

    ros2 launch anomaly_inspection uav_pipeline_inspection.launch.py [scenario:=NAME] [output_dir:=DIR] [params_file:=FILE]

Nodes and parameters come from anomaly_inspection_ros.missions, the same description that
`anomaly-inspection mission uav` runs in the pip environment.
"""

from anomaly_inspection_ros.launch_support import mission_launch_description


def generate_launch_description():
    return mission_launch_description("uav")
