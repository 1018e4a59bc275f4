"""Processes started together all find each other (the shipped Fast DDS profile, config/fastdds.xml).

Fast DDS's LARGE_DATA mode, which this project used before, failed this: in 3 of 3 rounds of six
processes one pair never matched within 15 s, and a mission's mapper then received nothing.

What is asserted is discovery: every peer prints whom it heard, and when. A peer that has printed
its result but then does not exit (seen once in CI, 1 peer of ~100 rounds' worth: it had matched
everyone in 0.03 s) is not a discovery failure; it is stopped, its Python stacks are shown in a
warning, and the round still counts. The mission runner stops its nodes the same way (SIGINT, then
SIGKILL after 10 s).
"""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = 6
TIMEOUT_S = 20.0
EXIT_GRACE_S = 30.0  # after the round's timeout and the peers' linger: plenty on a loaded 2-core machine


def _stop(proc: subprocess.Popen) -> str:
    """Stop a peer that did not exit: dump its Python stacks (SIGUSR1, dds_peer.py), then kill it."""
    proc.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    proc.kill()
    return proc.communicate()[0]


def _round() -> list[dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[1] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(HERE / "dds_peer.py"), str(i), str(PEERS), str(TIMEOUT_S)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(PEERS)]
    deadline = time.monotonic() + TIMEOUT_S + EXIT_GRACE_S  # one deadline for the whole round
    outputs, hung = [], []
    for i, p in enumerate(procs):
        try:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
        except subprocess.TimeoutExpired:
            outputs.append(_stop(p))
            hung.append(i)
    results = []
    for i, out in enumerate(outputs):
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert lines, f"peer {i} printed no result:\n{out[-3000:]}"
        results.append(json.loads(lines[-1]))
    for i in hung:
        warnings.warn(f"DDS peer {i} printed its result but did not exit within {EXIT_GRACE_S:.0f} s of the "
                      f"round's timeout; stopped. Its output and stacks:\n{outputs[i][-4000:]}")
    return results


def test_six_processes_started_together_all_match():
    for _ in range(2):
        results = _round()
        unmatched = [r for r in results if r["missing"]]
        assert not unmatched, f"peers that never heard some others within {TIMEOUT_S:.0f} s: {unmatched}"
        # matched within seconds, not by a late retry
        assert max(r["seconds"] for r in results) < 10.0, results
