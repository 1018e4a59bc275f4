"""The anomaly map's own blur, and a defect's width with it removed.

A detector's map is wider than the defect that causes it: every patch feature sees a receptive
field, features are averaged over a neighbourhood, the grid is upsampled and smoothed. Across
one line through a defect the map is modelled as the defect's own response convolved with the
map's *point spread*, both bell-shaped, so that their widths at half maximum add in quadrature:
``measured**2 = width**2 + spread**2``.

Measured on the UAV's pipe (pipeline_straight, ten 3-10 cm defects seen from 0.77 m with a
mission's model), the defects' sizes recovered this way were off by a median of +4 mm (|8| mm);
modelling each defect as a hard-edged box under a Gaussian blur instead, +15 mm: the detector's
response to a defect is itself soft-edged.

The point spread is measured by planting squares of known side in normal images
(:func:`point_spread_from_probe`); a defect's width is recovered from its region's width above
its half maximum (:func:`half_maximum_level`) with :func:`deblurred_width`. All widths in pixels.
"""

from __future__ import annotations

import math

import numpy as np


def deblurred_width(measured: float, spread: float, minimum: float = 1.0) -> float:
    """The defect's width whose blurred half-maximum width is ``measured``.

    A defect narrower than the spread is not resolved: its measured width is about the spread
    whatever it is, and the quadrature falls to nothing (a 5 cm missing-coating patch seen
    from 0.77 m came out as 3 mm in a mission). Then anything between 0 and ``measured`` fits
    and half of it is returned; the quadrature takes over above 1.15 x the spread, where it
    exceeds that. At least ``minimum``."""
    measured = float(measured)
    width = math.sqrt(max(measured ** 2 - max(float(spread), 0.0) ** 2, 0.0))
    return max(width, 0.5 * measured, minimum)


def point_spread_from_probe(measured: float, side: float) -> float:
    """The spread that widens a probe of ``side`` to ``measured`` at half maximum (0 when it was
    not widened)."""
    return math.sqrt(max(float(measured) ** 2 - float(side) ** 2, 0.0))


def map_logit(p, eps: float = 1e-6):
    """The detector's raw units of normalised map values ``p`` (scalar or array): the map is a
    logistic of the raw patch distance, so its logit is that distance, shifted and scaled.
    ``p`` is clipped to ``[eps, 1 - eps]`` (saturated pixels stay finite); NaN counts as 0."""
    q = np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=0.0), eps, 1.0 - eps)
    out = np.log(q / (1.0 - q))
    return float(out) if out.ndim == 0 else out


def half_maximum_level(peak: float, normal_level: float | None) -> float:
    """The map level halfway between a normal pixel and ``peak`` in the detector's raw units.

    The memory-bank model's map is a logistic of its raw patch distance, so halfway in raw
    distance is halfway in logit space between ``normal_level`` and the peak (a strong peak of
    0.98 with normal pixels at 0.12: 0.72). Without ``normal_level`` (0 or None) the map is
    taken as linear from 0: half the peak.
    """
    if not normal_level or not 0.0 < normal_level < 1.0:
        return 0.5 * float(peak)
    lp, ln = map_logit(peak), map_logit(normal_level)
    return 1.0 / (1.0 + math.exp(-(ln + 0.5 * (lp - ln))))
