"""CSAT arithmetic: what the surveys counted in one compliance window add to its record.

A survey is counted in a window as a `SurveyEntry`: whether it was positive, its score on
0..1 (the scale's minimum is 0, its maximum 1, so answers on different scales average) and
the verdict of the ticket's clock of the window's metric (`met`, `breached`, or "" when the
ticket has no such outcome, e.g. a ticket never seen). `csat_fields` turns a window's
surveys into the fields its compliance record gains:

- surveys, positive, csat_ratio (positive / surveys), score_mean (mean score on 0..1);
- the same split by the verdict: surveys_met, positive_met, csat_met_ratio and
  surveys_breached, positive_breached, csat_breached_ratio: does breaching hurt
  satisfaction? A ratio with no surveys behind it is None, never 0 or 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = ["SurveyEntry", "csat_fields", "CSAT_FIELDS", "share"]

SurveyEntry = tuple[bool, float, str]  # positive?, score on 0..1, verdict ("met", "breached", "")

CSAT_FIELDS: Final = ("surveys", "positive", "csat_ratio", "score_mean", "surveys_met",
                      "positive_met", "csat_met_ratio", "surveys_breached", "positive_breached",
                      "csat_breached_ratio")


def share(part: int, whole: int) -> float | None:
    """part / whole; None when there is nothing to share."""
    return part / whole if whole else None


def csat_fields(surveys: Iterable[SurveyEntry]) -> dict[str, Any]:
    """The CSAT fields of a window's compliance record, from its surveys (in CSAT_FIELDS order)."""
    counts = {"": [0, 0], "met": [0, 0], "breached": [0, 0]}  # verdict -> [surveys, positive]
    received = positive = 0
    scores = 0.0
    for is_positive, score, verdict in surveys:
        received += 1
        positive += is_positive
        scores += score
        split = counts.get(verdict)
        if split is not None:
            split[0] += 1
            split[1] += is_positive
    met, breached = counts["met"], counts["breached"]
    return {
        "surveys": received, "positive": positive, "csat_ratio": share(positive, received),
        "score_mean": scores / received if received else None,
        "surveys_met": met[0], "positive_met": met[1], "csat_met_ratio": share(met[1], met[0]),
        "surveys_breached": breached[0], "positive_breached": breached[1],
        "csat_breached_ratio": share(breached[1], breached[0]),
    }
