# Device entry point: the application lives in firmware/; this only starts it, after
# lib/ota has swapped in a staged update (or rolled a failed one back).
import sys

from ota import Swap

Swap().boot()
del Swap
sys.modules.pop("ota")  # not needed while the application runs: its heap comes back
try:
    from firmware import app

    app.run()
except Exception as exc:  # never a dead REPL: the reset retries (and counts an update's boots)
    import machine

    sys.print_exception(exc)
    machine.reset()
