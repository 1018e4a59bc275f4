"""AGV factory patrol inspection: sim (AGV with a mast camera), waypoint patrol, detector, mapper and mission coordinator.

    ros2 launch anomaly_inspection agv_patrol_inspection.launch.py scenario:=factory_tank_farm output_dir:=/tmp/run

The node list and parameters come from anomaly_inspection_ros.missions (the same description
`anomaly-inspection mission agv` runs in the pip environment).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown, SetEnvironmentVariable
from launch_ros.actions import Node

from anomaly_inspection_ros.missions import mission_spec

ROBOT = "agv"


def _nodes(context):
    spec = mission_spec(ROBOT, context.launch_configurations["scenario"] or None,
                        context.launch_configurations["output_dir"],
                        model_dir=context.launch_configurations["model_dir"])
    actions = []
    for node in spec.nodes:
        actions.append(Node(
            package="anomaly_inspection", executable=node.executable, name=node.name, namespace=node.namespace,
            parameters=[node.param_file, node.parameters] if node.param_file else [node.parameters],
            output="screen",
            # the coordinator's exit ends the whole launch, like `anomaly-inspection mission`
            on_exit=Shutdown() if node.executable == "mission_node" else None,
        ))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("scenario", default_value="", description="scenario name or YAML path"),
        DeclareLaunchArgument("output_dir", default_value="output/agv_mission", description="report folder"),
        DeclareLaunchArgument("model_dir", default_value="", description="fitted model (skips the teach pass)"),
        SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        OpaqueFunction(function=_nodes),
    ])
