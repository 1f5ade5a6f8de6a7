# Seed 002: a publisher's readings; the backend has no command topic. Its
# sensor_readings are a fixed set (stored as columns in MySQL and a CSV file): no
# soil_temp there.
TOPICS = (
    ("telemetry", "harit-samarth/sensor/data"),
    ("status", "harit-samarth/status"),
)
SUBSCRIBE = ()
TELEMETRY = (
    ("timestamp", "$ts"), ("publisher_id", "$device_id"),
    ("sensor_readings", (("N", "$sensors.n"), ("P", "$sensors.p"), ("K", "$sensors.k"),
                         ("Temperature", "$sensors.temp"), ("Moisture", "$sensors.moisture"),
                         ("pH", "$sensors.ph"))),
)
STATUS = (("status", "$status"), ("message", "$message"), ("timestamp", "$ts"), ("publisher_id", "$device_id"))
