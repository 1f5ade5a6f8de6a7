"""farmctl: host-side tools for farmnode devices (simulator, deploy, broker helpers).
The host tools speak and check what the firmware does with the firmware's own code
(profiles, config checks, signing): it is importable once farmctl is."""
from farmsim.runtime import use_device_code

use_device_code()
