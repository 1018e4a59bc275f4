"""Launch descriptions built from :mod:`missions` (needs ``launch``/``launch_ros``: full ROS 2 installs only).

Each ``launch/*.launch.py`` is a one-liner around :func:`mission_launch_description`, so the
three missions share one implementation and the node list stays in ``missions.py``.
"""

from __future__ import annotations

from .missions import ROBOTS, mission_spec


def mission_launch_description(robot: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable, Shutdown
    from launch.substitutions import EnvironmentVariable
    from launch_ros.actions import Node

    from .node_utils import dds_profile_path

    def nodes(context):
        cfg = context.launch_configurations
        spec = mission_spec(robot, cfg["scenario"] or None, cfg["output_dir"], model_dir=cfg["model_dir"],
                            params_file=cfg["params_file"])
        return [Node(package="anomaly_inspection", executable=n.executable, name=n.name, namespace=n.namespace,
                     parameters=[*n.param_files, n.parameters], output="screen",
                     # the coordinator's exit ends the launch, like `anomaly-inspection mission`
                     on_exit=Shutdown() if n.executable == "mission_node" else None)
                for n in spec.nodes]

    return LaunchDescription([
        DeclareLaunchArgument("scenario", default_value="",
                              description=f"scenario name or YAML path (default {ROBOTS[robot][2]})"),
        DeclareLaunchArgument("output_dir", default_value=f"output/{robot}_mission", description="report folder"),
        DeclareLaunchArgument("model_dir", default_value="", description="fitted model (skips the teach pass)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="parameter file applied after the shipped mission parameters"),
        # every process of the launch (rviz2 too) uses the shipped Fast DDS profile unless one is set
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", default_value=dds_profile_path())),
        OpaqueFunction(function=nodes),
    ])
