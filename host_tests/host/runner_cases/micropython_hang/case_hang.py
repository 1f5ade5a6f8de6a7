import sys
import time


def test_hangs_only_under_micropython():
    while sys.implementation.name == "micropython":
        time.sleep_ms(10)
