"""Node processes run numpy's OpenBLAS with one thread unless the user says otherwise.

The package's ``__init__`` sets ``OPENBLAS_NUM_THREADS`` before numpy is imported; this asks
the OpenBLAS that numpy loaded how many threads it really runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import anomaly_inspection_ros, ctypes, glob, os, numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*"))
for lib in libs:
    for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads"):
        fn = getattr(ctypes.CDLL(lib), name, None)
        if fn is not None:
            print(fn())
            raise SystemExit(0)
print("unknown")
"""


@pytest.mark.parametrize("given, expected", [(None, "1"), ("2", "2")])
def test_numpy_openblas_runs_one_thread_unless_the_user_sets_it(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() != "unknown", "numpy's OpenBLAS no longer says its thread count: update PROBE"
    assert out.stdout.strip() == expected
