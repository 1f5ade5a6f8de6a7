# farmnode firmware: the farm node application. Runs unchanged on the ESP32,
# the MicroPython unix port and CPython (with the stubs in host_tests/stubs).
VERSION = "0.1.0"
