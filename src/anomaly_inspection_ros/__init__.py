"""Thin ROS 2 node adapters around anomaly_inspection_core."""
