"""ROS-free core of anomaly_inspection: scenarios, simulation, detection, geometry, reports.

Nothing below this package imports rclpy; the ROS 2 nodes in ``anomaly_inspection_ros``
are thin adapters around it.
"""

__version__ = "0.1.0"
