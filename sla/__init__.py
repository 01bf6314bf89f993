"""The rules of slamon: policies, calendars, SLA clocks and compliance.

Pure Python with no I/O: the live Faust path (`agents/`) and `slamon replay`
call the same code and get the same records for the same input.
"""
