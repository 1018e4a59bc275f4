"""A 640x480 rgb8 stream at 30 Hz crosses a process boundary without loss (config/fastdds.xml)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image

from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.node_utils import qos_from_name

from conftest import spin_until  # noqa: E402  (test/ is on sys.path via rootdir conftest)

HELPER = Path(__file__).with_name("image_stream_publisher.py")


@pytest.mark.parametrize("qos", ["sensor_data", "reliable"])
def test_640x480_stream_at_30hz_arrives_without_loss(ros_context, qos):
    count = 90  # 3 s of video
    node = rclpy.create_node("stream_listener", context=ros_context)
    received: dict[int, float] = {}
    latencies = []

    def on_image(msg: Image) -> None:
        now = time.time()
        seq = int(msg.header.frame_id)
        received[seq] = now
        latencies.append(now - conv.stamp_to_sec(msg.header.stamp))
        if seq % 10 == 0:  # full decode on a sample: keep the callback light
            arr = conv.image_to_numpy(msg)
            assert arr.shape == (480, 640, 3)
            assert int(np.frombuffer(arr[0, :8, 0].tobytes(), np.int64)[0]) == seq

    node.create_subscription(Image, "/stream/image_raw", on_image, qos_from_name(qos, depth=10))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(HELPER), "640", "480", "30", str(count), qos], env=env)
    try:
        spin_until(executor, lambda: len(received) >= count or proc.poll() is not None, timeout_s=60.0)
        spin_until(executor, lambda: len(received) >= count, timeout_s=2.0)
    finally:
        proc.wait(timeout=30)
        executor.shutdown()
        node.destroy_node()
    assert proc.returncode == 0
    missing = sorted(set(range(count)) - set(received))
    assert not missing, f"{len(missing)} of {count} frames lost ({qos}): first missing {missing[:10]}"
    span = received[count - 1] - received[0]
    assert span < (count / 30.0) * 1.5, f"stream took {span:.2f} s: not delivered at 30 Hz"
    print(f"\n{qos}: {count} frames, latency p50 {np.median(latencies) * 1e3:.1f} ms, "
          f"p95 {np.percentile(latencies, 95) * 1e3:.1f} ms")
