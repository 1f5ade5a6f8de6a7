"""How a long-running farmctl command (sim, vdev, broker) is stopped: SIGTERM (kill,
timeout, systemd, a CI runner) and SIGHUP (the terminal closed) end it as Ctrl-C does,
with a KeyboardInterrupt, so that its cleanup stops what it started. Once stopping,
further signals are ignored: a second Ctrl-C must not cut the cleanup short (it is
bounded by a few seconds)."""
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, frame):
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals():
    for sig in SIGNALS:
        signal.signal(sig, _interrupt)
