# Cooperative steps: a long job (a bus transaction, a sensor pass) is written as a
# generator that yields whenever it would wait, so one main loop can interleave it
# with servicing the network. run() drives such a generator alone, for REPL use.
from ticks import sleep_ms


def run(steps, pause_ms=1):
    """Drive a step generator to its end, sleeping pause_ms at each yield; return its result."""
    try:
        while True:
            next(steps)
            sleep_ms(pause_ms)
    except StopIteration as stop:
        return stop.value
