"""Test helper process: one ROS 2 participant that must hear every other peer of its round.

Usage: python dds_peer.py INDEX COUNT TIMEOUT_S
Publishes its index on the latched topic /peers/p<INDEX>, subscribes to every other peer's topic,
prints one JSON line {"index", "missing", "seconds"} once it heard all (or at the timeout), and
stays up LINGER_S longer so that slower peers can still hear it. Exit status 0 when nothing is
missing. SIGUSR1 prints every thread's Python stack (the test sends it to a peer that does not exit).
"""

import faulthandler
import json
import signal
import sys
import time

import rclpy
from std_msgs.msg import Int32

from anomaly_inspection_ros.node_utils import apply_dds_environment, latched_qos

LINGER_S = 5.0


def main() -> int:
    index, count, timeout_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    apply_dds_environment()
    rclpy.init()
    node = rclpy.create_node(f"peer{index}")
    node.create_publisher(Int32, f"/peers/p{index}", latched_qos()).publish(Int32(data=index))
    heard: dict[int, float] = {}
    t0 = time.monotonic()
    subs = [node.create_subscription(Int32, f"/peers/p{j}", lambda m: heard.setdefault(m.data, time.monotonic()),
                                     latched_qos())
            for j in range(count) if j != index]
    reported = False
    status = 1
    end = t0 + timeout_s
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
        done = len(heard) == len(subs)
        if done and not reported:
            print(json.dumps({"index": index, "missing": [], "seconds": round(time.monotonic() - t0, 2)}),
                  flush=True)
            reported, status = True, 0
            end = min(end, time.monotonic() + LINGER_S)
    if not reported:
        missing = [j for j in range(count) if j != index and j not in heard]
        print(json.dumps({"index": index, "missing": missing, "seconds": round(time.monotonic() - t0, 2)}),
              flush=True)
    print("# shutting down", flush=True)  # where a peer stops, should it hang on the way out
    node.destroy_node()
    rclpy.shutdown()
    print("# shut down", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
