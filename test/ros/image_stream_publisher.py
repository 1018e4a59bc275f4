"""Test helper process: publishes N synthetic rgb8 images at a fixed rate with sequence numbers.

Usage: python image_stream_publisher.py WIDTH HEIGHT RATE_HZ COUNT QOS
Each image's header.frame_id is its sequence number; the first pixel row encodes it too.
"""

import sys
import time

import numpy as np
import rclpy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_inspection_ros import conversions as conv
from anomaly_inspection_ros.node_utils import apply_dds_environment, qos_from_name


def main() -> int:
    width, height, rate, count, qos = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    apply_dds_environment()
    rclpy.init()
    node = rclpy.create_node("image_stream_publisher")
    pub = node.create_publisher(Image, "/stream/image_raw", qos_from_name(qos, depth=5))
    # wait (bounded) for the subscriber to be matched before streaming
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)  # let the data channel come up after discovery
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    period = 1.0 / rate
    t_next = time.monotonic()
    for i in range(count):
        t_next += period
        img = base.copy()
        img[0, :8, 0] = np.frombuffer(np.int64(i).tobytes(), np.uint8)
        stamp = conv.sec_to_stamp(time.time())
        pub.publish(conv.numpy_to_image(img, "rgb8", Header(stamp=stamp, frame_id=str(i))))
        sleep = t_next - time.monotonic()
        if sleep > 0:
            time.sleep(sleep)
    time.sleep(1.0)  # let the last samples drain
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
