# Sensor drivers. Each is handed its hardware (ADC, Pin, UART master, I2C circuit) by
# firmware.board and has the same small interface:
#   name        the sensor's name in telemetry "errors" (soil, dht, npk, ec, ph, wind)
#   keys        the telemetry names it fills (moisture, temp, ...)
#   read_steps(values, errors)
#               a step generator (lib/coop) that sets values[key] for each key, a number
#               or None, and errors[name] to a short reason when it failed. It ends
#               within the driver's own time bound and yields while it waits.
