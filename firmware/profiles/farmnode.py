# The farmnode profile: PROTOCOL.md as it is (see firmware/profiles).
TOPICS = (
    ("telemetry", "{prefix}/{device_id}/telemetry"),
    ("status", "{prefix}/{device_id}/status"),
    ("commands", "{prefix}/{device_id}/commands"),
    ("broadcast", "{prefix}/all/commands"),
    ("command_response", "{prefix}/{device_id}/command_response"),
    ("config", "{prefix}/{device_id}/config"),
    ("alert", "{prefix}/{device_id}/alert"),
)
SUBSCRIBE = ("commands", "broadcast", "config")
TELEMETRY = (
    ("device_id", "$device_id"), ("farm_id", "$farm_id"), ("boot_id", "$boot_id"), ("seq", "$seq"),
    ("ts", "$ts"), ("uptime_s", "$uptime_s"), ("sensors", "$sensors"), ("relays", "$relays"),
    ("errors", "$errors"), ("meta", "$meta"),
)
STATUS = None  # the canonical status as it is
