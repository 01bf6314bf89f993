"""Stored ticket state: what the previous release wrote still loads, and is written back alike."""

from __future__ import annotations

import orjson

from sla.clock import Clock
from sla.ticket import TicketState

# Written by the release before "no retarget" became None in memory (taken from a replay).
PREVIOUS_OPEN = (
    b'["T13275","reporting","umbrella","P4",7,1792527559249,null,[[1792527559249,0,"opened",'
    b'"T13275-1","P4","reporting","umbrella",44261],[1792540632459,1,"responded","T13275-2",null,'
    b'null,null,48474],[1792543646082,2,"paused","T13275-3",null,null,null,49350],[1792565499878,'
    b'3,"resumed","T13275-4",null,null,null,56584]],4,[["response",0,3,13073210,1792540632459,'
    b'86400000,1792527559249,0,[1792527559249,1792540632459],-1,null]],{"T13275:response:0:'
    b'outcome":[0,1,["met",13073.21,"2026-10-20T23:57:12.459Z"],"response","outcome"]},'
    b'1792565499877,1792565499878,-4611686018427387904]'
)
PREVIOUS_TOMBSTONE = (
    b'["T1","email","umbrella","P2",7,1792368000000,1792400228312,null,6,[],{},1792400288313,'
    b'1792400228312,1792382400000]'
)


def test_state_of_the_previous_release_loads_and_is_written_back_alike() -> None:
    for stored in (PREVIOUS_OPEN, PREVIOUS_TOMBSTONE):
        state = TicketState.from_wire(orjson.loads(stored))
        assert orjson.dumps(state.to_wire()) == stored


def test_no_pending_retarget_is_none_in_memory_and_minus_one_on_the_wire() -> None:
    state = TicketState.from_wire(orjson.loads(PREVIOUS_OPEN))
    clock = state.clocks["response"]
    assert clock.retro_at is None
    assert clock.to_wire()[9] == -1


def test_a_pending_retarget_keeps_its_instant() -> None:
    wire = ["resolution", 1, 1, 5000, 1792540632459, 3600000, 1792527559249, 1,
            [1792527559249], 1792540632459, 1792540632459]
    clock = Clock.from_wire(wire)
    assert clock.retro_at == 1792540632459
    assert clock.to_wire() == wire
