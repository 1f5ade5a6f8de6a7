"""farmctl: host-side tools for farmnode devices (simulator, deploy, broker helpers)."""
