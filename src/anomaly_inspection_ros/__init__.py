"""Thin ROS 2 node adapters around anomaly_inspection_core."""

import os

# One OpenBLAS thread per node process, unless the user says otherwise. numpy's OpenBLAS starts
# a worker per core and its workers busy-wait between calls: the patrol node's obstacle check
# (a 77k x 3 matrix product, 10 Hz) cost 6.4 s of CPU per 10 s with the default threads and
# 0.6 s with one, on the 2-core machines every node of a mission shares. Set here, in the
# package every node process imports first, so it precedes numpy's import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
