import pytest

from remoteio.errors import BadPin
from remoteio.pins import (ALL_BOARD_PINS, BCM_TO_BOARD, BOARD_TO_BCM, POWER_AND_GROUND, bcm_of,
                           board_pin, expander_pin_name, expander_pin_parts, pin_key)


def test_header_has_28_gpios_and_12_power_or_ground_pins():
    assert len(BOARD_TO_BCM) == 28
    assert sorted(BOARD_TO_BCM.values()) == list(range(28))
    assert set(BOARD_TO_BCM) | set(POWER_AND_GROUND) == set(range(1, 41))
    assert not set(BOARD_TO_BCM) & set(POWER_AND_GROUND)


@pytest.mark.parametrize("spec,numbering", [
    (7, "b"), (4, "g"), ("7", "b"), ("4", "g"), ("b7", "b"), ("g4", "b"), ("BOARD7", "b"),
    ("board7", "g"), ("GPIO4", "b"), ("gpio4", "g"), ("BCM4", "b"), ("J8:7", "g"), (" GPIO4 ", "b"),
])
def test_every_spelling_of_gpio4_is_board_pin_7(spec, numbering):
    assert board_pin(spec, numbering) == 7


def test_round_trip_for_every_gpio():
    for board in ALL_BOARD_PINS:
        assert board_pin(bcm_of(board), "g") == board
        assert BCM_TO_BOARD[bcm_of(board)] == board


@pytest.mark.parametrize("spec,reason", [
    (1, "3V3 power"), (2, "5V power"), (6, "ground"), (39, "ground"),
    (0, "not on the 40-pin header"), (41, "not on the 40-pin header"),
    ("GPIO28", "GPIO0 to GPIO27"), ("BOARD9", "ground"),
])
def test_power_ground_and_off_header_pins_say_why(spec, reason):
    with pytest.raises(BadPin, match=reason):
        board_pin(spec)


@pytest.mark.parametrize("spec", ["", "LED", "GPIO", "7a", "GPIO-4", "1234", 7.0, True, None, [7]])
def test_unreadable_specs_are_bad_pins(spec):
    with pytest.raises(BadPin):
        board_pin(spec)


def test_bad_numbering():
    with pytest.raises(BadPin, match="numbering"):
        board_pin(7, "x")


def test_bad_pin_is_a_value_error_with_its_wire_code():
    with pytest.raises(ValueError) as info:
        board_pin(1)
    assert info.value.code == "bad_pin"


@pytest.mark.parametrize("spec, key", [("pcf0:P3", "pcf0:P3"), ("PCF0:p7", "pcf0:P7"),
                                       ("mcp0:gpb7", "mcp0:B7"), ("mcp0:11", "mcp0:B3")])
def test_expander_pins_keep_their_naming_style_in_the_canonical_name(spec, key):
    assert pin_key(spec) == key


def test_a_pcf8574_pin_is_named_p0_to_p7_and_others_keep_a_and_b():
    assert expander_pin_parts("pcf0:P3") == ("pcf0", 3, "P")
    assert expander_pin_parts("mcp0:A3") == ("mcp0", 3, "AB")
    assert expander_pin_parts("mcp0:3") == ("mcp0", 3, "")
    assert expander_pin_name("pcf0", 5, "pcf8574a") == "pcf0:P5"
    assert expander_pin_name("mcp0", 13, "mcp23017") == "mcp0:B5"


@pytest.mark.parametrize("spec", ["pcf0:P8", "pcf0:GPP3", "pcf0:PA3", "pcf0:P"])
def test_a_p_name_past_p7_is_a_bad_pin_naming_both_forms(spec):
    with pytest.raises(BadPin, match="'pcf0:P3' \\(PCF8574: P0-P7\\)"):
        pin_key(spec)
