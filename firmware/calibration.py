# Calibration, one point per call (the `calibrate` command and the technician's REPL):
# the probe is measured now, in the reference the technician put it in, and the result
# is saved in the config (sensors.*), so it survives a restart. An EZO circuit keeps
# its calibration itself: the point is passed on to it.
#   moisture: "dry" (probe in air), "wet" (in saturated soil); value: raw counts, else measured
#   ph:       "mid" (first: restarts the calibration), "low", "high"; value: the buffer's pH
#   ec:       "one" (single point), "low", "high" (value: the solution's mS/cm at 25 C), "dry"
#   any:      "clear" goes back to the default calibration
from firmware.params import shown as short
from firmware.sensors import module, ph, soil
from micropython import const

_PH_BUFFERS = {"mid": 7.0, "low": 4.0, "high": 10.0}
_MIN_EFFICIENCY = const(0.80)  # a pH probe below this is worn out or a buffer was wrong
_MAX_EFFICIENCY = const(1.05)


def at_temperature(ec25, temp_c, temp_coef):
    """What a solution of ec25 (at 25 C) conducts at temp_c."""
    return ec25 * (1 + temp_coef * (temp_c - 25))


def fit_ec(points, temp_coef=0.02):
    """Calibration from 1 or 2 points (reference ec25 mS/cm, volts, solution temp C).

    One point fixes k with offset 0; two fix both. Returns (k, offset) or raises ValueError."""
    if len(points) == 1:
        ec25, volts, temp_c = points[0]
        if volts <= 0:
            raise ValueError("EC calibration: the probe gave no voltage")
        k, offset = at_temperature(ec25, temp_c, temp_coef) / volts, 0.0
    elif len(points) == 2:
        (e1, v1, t1), (e2, v2, t2) = points
        if v1 == v2:
            raise ValueError("EC calibration: both solutions gave the same voltage")
        c1 = at_temperature(e1, t1, temp_coef)
        c2 = at_temperature(e2, t2, temp_coef)
        k = (c2 - c1) / (v2 - v1)
        offset = c1 - k * v1
    else:
        raise ValueError("EC calibration needs 1 or 2 reference solutions, got %d" % len(points))
    if k <= 0:
        raise ValueError("EC calibration: conductivity must rise with the voltage (k=%.3f)" % k)
    return k, offset


def fit_ph(points, temp_c=25.0, gain=1.0):
    """Calibration from 2 or 3 (buffer pH, volts) points measured at temp_c.

    Returns (slope_mv_per_ph_at_25, offset_volts_at_ph7) by least squares; raises
    ValueError when the slope is outside 80-105 % of 59.16 mV/pH times the board's gain."""
    n = len(points)
    if n not in (2, 3):
        raise ValueError("pH calibration needs 2 or 3 buffers, got %d" % n)
    mean_ph = sum(p[0] for p in points) / n
    mean_v = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mean_ph) ** 2 for p in points)
    if sxx == 0:
        raise ValueError("pH calibration buffers must differ")
    slope_v = sum((p[0] - mean_ph) * (p[1] - mean_v) for p in points) / sxx
    slope_mv25 = slope_v * 1000 * ph.K25 / ph.kelvin(temp_c)
    efficiency = -slope_mv25 / (ph.NERNST_MV * gain)
    if not _MIN_EFFICIENCY <= efficiency <= _MAX_EFFICIENCY:
        raise ValueError("pH slope %.1f mV/pH is %d%% of the ideal %.2f: check the buffers and the probe"
                         % (slope_mv25, round(efficiency * 100), ph.NERNST_MV * gain))
    return slope_mv25, mean_v + slope_v * (7 - mean_ph)


def calibrate(node, sensor, point, value, temp_c=None):
    """Store one calibration point of sensor ("ph", "ec", "moisture"); returns what was
    stored, or step generator for an EZO circuit. Raises ValueError saying what is wrong."""
    if sensor not in ("ph", "ec", "moisture"):
        raise ValueError("'sensor' must be ph, ec or moisture, got %s" % short(sensor))
    if point is not None and type(point) is not str:
        raise ValueError("'point' must be a string")
    if value is not None and (type(value) not in (int, float) or value - value != 0):
        raise ValueError("'value' must be a number")
    if temp_c is not None and (type(temp_c) not in (int, float) or not -10 <= temp_c <= 60):
        raise ValueError("'temp_c' must be a number between -10 and 60")
    name = "soil" if sensor == "moisture" else sensor
    driver = node.reader.driver(name)
    if driver is None:
        raise ValueError("no %s sensor is enabled" % sensor)
    if hasattr(driver, "reason"):
        raise ValueError("the %s sensor is not working (%s)" % (sensor, driver.reason))
    if hasattr(driver, "calibrate_steps"):
        return _ezo(driver, sensor, point, value)
    calibration = node.calibration_points  # a multi-point calibration, between commands
    if sensor == "moisture":
        patch, shown = _soil(driver, point, value)
    elif sensor == "ph":
        patch, shown = _ph(driver, point, value, _temperature(node, temp_c), node.cfg, calibration)
    else:
        patch, shown = _ec(driver, point, value, _temperature(node, temp_c), node.cfg, calibration)
    node.apply_config({"sensors": {name: patch}})
    shown["sensor"] = sensor
    shown["point"] = point
    shown.update(patch)
    return shown


def _temperature(node, temp_c):
    """The solution's temperature: as given, else the one the readings are compensated
    with (the soil probe's, else the air's: SensorReader.temperature), else 25 C."""
    if temp_c is not None:
        return temp_c
    known = node.reader.temperature()
    return 25.0 if known is None else known


def _volts(driver, sensor):
    micro = driver.read_volts()
    if not ph.RAIL_LOW_UV <= micro < ph.RAIL_HIGH_UV:  # the same rails for EC
        raise ValueError("the %s probe reads %.3f V: not connected?" % (sensor, micro / 1000000))
    return driver.volts


def _cleared(sensor, keys, calibration):
    """The default calibration back; a calibration in progress is dropped."""
    calibration.pop(sensor, None)
    default = dict(module(sensor).SETTINGS)
    return {key: default[key] for key in keys}, {}


def _soil(driver, point, value):
    if point == "clear":
        return _cleared("soil", ("dry", "wet"), {})
    if point not in ("dry", "wet"):
        raise ValueError("moisture calibration point must be dry, wet or clear")
    raw = driver.read_raw() if value is None else value
    if type(raw) is not int or not soil.connected(raw):
        raise ValueError("moisture probe reads %s counts: not connected?" % raw)
    return {point: raw}, {"raw": raw}


def _ph(driver, point, value, temp_c, cfg, calibration):
    spec = cfg["sensors"]["ph"]
    if point == "clear":
        return _cleared("ph", ("slope_mv", "offset_v"), calibration)
    if point not in _PH_BUFFERS:
        raise ValueError("ph calibration point must be mid, low, high or clear")
    buffer_ph = _PH_BUFFERS[point] if value is None else value
    if not 0 < buffer_ph < 14:
        raise ValueError("'value' (the buffer's pH) must be between 0 and 14")
    volts = _volts(driver, "ph")
    points = {} if point == "mid" else calibration.get("ph", {})
    points[point] = (buffer_ph, volts)
    calibration["ph"] = points
    shown = {"volts": round(volts, 4), "temp_c": temp_c, "points": len(points)}
    if len(points) == 1:  # one buffer: the offset moves, the slope stays
        slope_v = spec["slope_mv"] / 1000 * (temp_c + 273.15) / 298.15
        return {"offset_v": round(volts - slope_v * (buffer_ph - 7), 5)}, shown
    slope, offset = fit_ph([points[k] for k in points], temp_c, spec["gain"])
    shown["efficiency_pct"] = round(-slope / (ph.NERNST_MV * spec["gain"]) * 100, 1)
    return {"slope_mv": round(slope, 3), "offset_v": round(offset, 5)}, shown


def _ec(driver, point, value, temp_c, cfg, calibration):
    spec = cfg["sensors"]["ec"]
    if point == "clear":
        return _cleared("ec", ("k", "offset"), calibration)
    if point == "dry":  # in air: no conductivity, whatever the board outputs
        volts = driver.read_volts() / 1000000
        return {"offset": round(-spec["k"] * volts, 5)}, {"volts": round(volts, 4)}
    if point not in ("one", "low", "high"):
        raise ValueError("ec calibration point must be one, low, high, dry or clear")
    if value is None or not 0 < value <= 200:
        raise ValueError("'value' (the solution's mS/cm at 25 C) must be above 0 and at most 200")
    volts = _volts(driver, "ec")
    points = {} if point == "one" else calibration.get("ec", {})
    points[point] = (value, volts, temp_c)
    calibration["ec"] = points
    k, offset = fit_ec([points[p] for p in points], spec["temp_coef"])
    return {"k": round(k, 5), "offset": round(offset, 5)}, {"volts": round(volts, 4), "temp_c": temp_c,
                                                             "points": len(points)}


def _ezo(driver, sensor, point, value):
    if sensor == "ec" and value is not None:
        value = int(value * 1000)  # the circuit takes uS/cm
    if point not in driver.cal_points:
        raise ValueError("%s calibration point must be one of %s" % (sensor, ", ".join(driver.cal_points)))
    reply = yield from driver.calibrate_steps(point, value)
    return {"sensor": sensor, "point": point, "circuit": reply}
