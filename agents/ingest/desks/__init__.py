"""The desk types a source can be: each module reads one vendor's payloads (see its
docstring for the shapes, the signature and the defaults)."""

from __future__ import annotations

from agents.ingest.desks import (
    freshservice,
    generic,
    github,
    gitlab,
    jira,
    servicenow,
    zammad,
    zendesk,
)
from agents.ingest.desks.base import Desk

__all__ = ["DESKS", "Desk"]

DESKS: dict[str, Desk] = {desk.name: desk for desk in (
    jira.DESK, zendesk.DESK, servicenow.DESK, freshservice.DESK, zammad.DESK, github.DESK,
    gitlab.DESK, generic.DESK,
)}
