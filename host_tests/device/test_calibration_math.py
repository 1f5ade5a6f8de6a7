# pH and EC calibration math against values computed by hand.
from firmware import calibration
from firmware.sensors import ec, ph
from testkit import raises


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol


# An ideal electrode, offset 1.500 V at pH 7, -59.16 mV/pH at 25 C:
# pH 4.01 -> 1.5 + 0.05916 * 2.99 = 1.6768884 V; pH 9.18 -> 1.5 - 0.05916 * 2.18 = 1.3710312 V
def test_two_point_ph_fit_of_an_ideal_probe():
    slope, offset = calibration.fit_ph([(4.01, 1.6768884), (9.18, 1.3710312)])
    assert close(slope, -59.16, 1e-4) and close(offset, 1.5)


def test_ph_fit_at_35c_is_normalised_to_25c():
    # At 35 C the slope is 59.16 * 308.15 / 298.15 = 61.14422 mV/pH.
    s35 = 0.06114422
    slope, offset = calibration.fit_ph([(4.0, 1.5 + s35 * 3), (10.0, 1.5 - s35 * 3)], temp_c=35.0)
    assert close(slope, -59.16, 1e-3) and close(offset, 1.5)


def test_three_point_ph_fit_is_least_squares():
    # Buffers 4/7/10 at +2 mV, 0, -2 mV from the ideal line: the fit passes through the mean
    # point (7, 1.5) with slope (-0.18148 - 0.18148) / 6 * ... = -59.16 - 2/3 mV/pH.
    points = [(4.0, 1.5 + 0.17748 + 0.002), (7.0, 1.5), (10.0, 1.5 - 0.17748 - 0.002)]
    slope, offset = calibration.fit_ph(points)
    assert close(slope, -59.16 - 0.6667, 1e-3) and close(offset, 1.5)


def test_implausible_ph_slope_is_refused_with_a_clear_error():
    weak = raises(ValueError, calibration.fit_ph, [(4.0, 1.5 + 0.045 * 3), (7.0, 1.5)])
    assert "76%" in str(weak) and "-45.0 mV/pH" in str(weak)
    steep = raises(ValueError, calibration.fit_ph, [(4.0, 1.5 + 0.063 * 3), (7.0, 1.5)])
    assert "106%" in str(steep)
    inverted = raises(ValueError, calibration.fit_ph, [(4.0, 1.5 - 0.059 * 3), (7.0, 1.5)])
    assert "-100%" in str(inverted)
    slope, _ = calibration.fit_ph([(4.0, 1.5 + 0.048 * 3), (7.0, 1.5)])  # 81 %: worn but usable
    assert close(slope, -48.0, 1e-6)


def test_ph_fit_with_an_amplifier_gain():
    # A board with gain 3: 177.48 mV/pH is 100 % of 3 x 59.16.
    slope, offset = calibration.fit_ph([(4.0, 2.5 + 0.17748 * 3), (7.0, 2.5)], gain=3.0)
    assert close(slope, -177.48, 1e-3) and close(offset, 2.5)
    raises(ValueError, calibration.fit_ph, [(4.0, 2.5 + 0.17748 * 3), (7.0, 2.5)])  # with gain 1: 300 %


def test_ph_fit_needs_two_or_three_distinct_buffers():
    assert "2 or 3" in str(raises(ValueError, calibration.fit_ph, [(7.0, 1.5)]))
    assert "differ" in str(raises(ValueError, calibration.fit_ph, [(7.0, 1.5), (7.0, 1.6)]))


def test_ph_from_volts_with_temperature_compensation():
    assert close(ph.ph_from_volts(1.6768884, -59.16, 1.5), 4.01)
    # The 35 C voltage of pH 4.01, read as if at 25 C, would give 7 - 2.99 * 308.15 / 298.15.
    v35 = 1.5 + 0.05916 * 308.15 / 298.15 * 2.99
    assert close(ph.ph_from_volts(v35, -59.16, 1.5, temp_c=35.0), 4.01)
    assert close(ph.ph_from_volts(v35, -59.16, 1.5), 3.909714, 1e-5)


def test_ec_temperature_compensation():
    assert close(ec.to_25c(2.2, 30.0, 0.02), 2.0)
    assert close(ec.to_25c(1.8, 20.0, 0.02), 2.0)
    assert close(ec.to_25c(1.907, 30.0, 0.0185), 1.907 / 1.0925)
    assert close(calibration.at_temperature(1.413, 20.0, 0.02), 1.2717)


def test_one_point_ec_calibration():
    k, offset = calibration.fit_ec([(1.413, 0.7065, 25.0)])
    assert close(k, 2.0) and offset == 0.0
    # The same solution at 20 C conducts 1.2717 mS/cm: 0.63585 V gives the same k.
    k, _ = calibration.fit_ec([(1.413, 0.63585, 20.0)])
    assert close(k, 2.0)


def test_two_point_ec_calibration():
    # k = 5 mS/cm per V, offset 0.1: 1.413 -> 0.2626 V, 12.88 -> 2.556 V
    k, offset = calibration.fit_ec([(1.413, 0.2626, 25.0), (12.88, 2.556, 25.0)])
    assert close(k, 5.0) and close(offset, 0.1)


def test_bad_ec_calibrations_are_refused():
    assert "same voltage" in str(raises(ValueError, calibration.fit_ec, [(1.413, 1.0, 25.0), (12.88, 1.0, 25.0)]))
    assert "rise" in str(raises(ValueError, calibration.fit_ec, [(1.413, 2.0, 25.0), (12.88, 1.0, 25.0)]))
    assert "no voltage" in str(raises(ValueError, calibration.fit_ec, [(1.413, 0.0, 25.0)]))
    assert "1 or 2" in str(raises(ValueError, calibration.fit_ec, []))
