"""Small statistics helpers: percentiles by nearest rank, medians and spreads."""

import math
import statistics


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary_ms(seconds: list[float]) -> dict:
    """p50, p99 and max in milliseconds of a list of durations in seconds."""
    millis = [value * 1000 for value in seconds]
    return {
        "count": len(millis),
        "p50_ms": _round(percentile(millis, 50)),
        "p99_ms": _round(percentile(millis, 99)),
        "max_ms": _round(max(millis) if millis else None),
    }


def median_and_spread(values: list[float]) -> dict:
    """Median of repeated runs plus min and max, so the noise is visible."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {
        "median": _round(statistics.median(values)),
        "min": _round(min(values)),
        "max": _round(max(values)),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline`` rounded, or ``None`` when either is missing."""
    if not value or not baseline:
        return None
    return round(value / baseline, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
