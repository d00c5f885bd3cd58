"""Batch replies gathered from their parts (server/gather.py)."""
from __future__ import annotations

import json

from remoteio.server.gather import Gather


def test_a_write_batch_answers_ok_once_every_part_is_in():
    gather = Gather(1, "9", "write", 3)
    assert gather.add(7, None) is None and gather.add(11, None) is None
    assert json.loads(gather.add(13, None)) == {"id": 9, "ok": True}


def test_a_failed_part_fails_the_batch_and_says_which_pin_and_why():
    gather = Gather(1, "9", "write", 2)
    gather.add(11, ("pin_busy", "held", None))
    answer = json.loads(gather.add(7, None))
    assert answer["ok"] is False and answer["error"]["code"] == "pin_busy"
    assert answer["error"]["message"] == "BOARD11: held"
    assert answer["results"] == {"7": {"ok": True},
                                 "11": {"ok": False, "error": {"code": "pin_busy", "message": "held"}}}


def test_a_part_errors_detail_travels_with_it():
    gather = Gather(1, "1", "read", 1)
    answer = json.loads(gather.add(7, ("bad_argument", "no", "PinFixedPull")))
    assert answer["results"]["7"]["error"]["detail"] == "PinFixedPull"


def test_a_read_batch_lists_the_values_by_pin_in_order():
    gather = Gather(1, '"r"', "read", 2)
    gather.add(13, None, 1)
    assert gather.add(7, None, 0) == b'{"id":"r","ok":true,"values":{"7":0,"13":1}}\n'
