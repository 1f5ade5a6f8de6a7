from reading import Reading


def test_reading_keeps_its_value():
    assert Reading(1.5).value == 1.5
