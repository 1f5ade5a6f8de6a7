# Seed 000: one telemetry topic for every farm, a flat payload checked by Pydantic
# (moisture/humidity 0-100, npk 0-1023, ec_salinity 0-20, wind_speed 0-150, soil_ph 0-14).
# "npk" is one number there (an analog probe); here the sum of N, P and K in mg/kg.
# soil_temp is not one of its fields: the model ignores fields it does not declare (the
# payload's farm_id and timestamp are such), so the backend takes it and keeps it out.
# Actuator acks ({"type": "STATUS", "<device>": "ON", ...}) go to the telemetry topic too.
TOPICS = (
    ("telemetry", "farm/telemetry"),
    ("status", "farm/{farm_id}/status"),
    ("commands", "farm/{farm_id}/commands"),
    ("command_response", "farm/telemetry"),
)
SUBSCRIBE = ("commands",)
NEEDS_TIME = True  # its backend de-duplicates by timestamp: readings without one would merge
ACK = "status"  # ACTUATE is acknowledged with {"type": "STATUS", "<device>": "ON", ...}
TELEMETRY = (
    ("farm_id", "$farm_id"), ("timestamp", "$ts"),
    ("moisture", ("$sensors.moisture", 0, 100)), ("temp", "$sensors.temp"), ("soil_temp", "$sensors.soil_temp"),
    ("humidity", ("$sensors.humidity", 0, 100)), ("npk", ("$npk_total", 0, 1023)),
    ("ec_salinity", ("$sensors.ec", 0, 20)), ("wind_speed", ("$sensors.wind_speed", 0, 150)),
    ("soil_ph", ("$sensors.ph", 0, 14)),
)
STATUS = None
