import sys


def test_adds():
    assert 1 + 1 == 2


def test_fails_with_message():
    assert sys.implementation.name == "nothing", "ran on " + sys.implementation.name
