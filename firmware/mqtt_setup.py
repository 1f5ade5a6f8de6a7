# The MQTT client a config asks for: ours (lib/mqtt) or micropython-lib's umqtt.simple,
# with TLS when mqtt.tls is set. Loaded while a link is made, unloaded after: the
# client lives on, the code that set it up does not.
from firmware.session import describe
from micropython import const

_CONNECT_TIMEOUT_MS = const(3000)  # the longest one connection attempt holds the loop
# The largest packet our client takes: a command, or a config up to a whole default one
# (~1.9 KB; a signed config must leave something out). A bigger one is acknowledged,
# dropped and counted (telemetry meta.rx_dropped).
RX_BYTES = 2048


def _der_from_pem(data):
    """mbedtls (MicroPython's ssl) wants DER, or PEM ending in NUL; give it DER."""
    if b"-----BEGIN" not in data:
        return data
    from binascii import a2b_base64

    body = data.split(b"-----BEGIN CERTIFICATE-----")[1].split(b"-----END")[0]
    return a2b_base64(b"".join(body.split()))


def _tls_context(mqtt, log):
    import ssl as tls

    context = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if not mqtt["ca"]:
        log("mqtt: TLS without a CA (mqtt.ca): the broker is not authenticated")
        context.verify_mode = tls.CERT_NONE
        if hasattr(context, "check_hostname"):
            context.check_hostname = False
        return context
    context.verify_mode = tls.CERT_REQUIRED
    try:
        with open(mqtt["ca"], "rb") as f:
            context.load_verify_locations(cadata=_der_from_pem(f.read()))
    except (OSError, ValueError, IndexError) as exc:
        # Never fall back to an unverified link: with no CA loaded every handshake
        # fails, and the session reports it on each (backed-off) attempt.
        log("mqtt: TLS CA %s unusable: %s" % (mqtt["ca"], describe(exc)))
    return context


def make_client(cfg, client_id, log=print):
    """The MQTT client the config asks for: ours, or the frozen umqtt.simple."""
    mqtt = cfg["mqtt"]
    ssl = _tls_context(mqtt, log) if mqtt["tls"] else None
    if mqtt["client"] == "umqtt":
        from umqtt.simple import MQTTClient

        client = MQTTClient(client_id, mqtt["host"], mqtt["port"], mqtt["user"] or None,
                            mqtt["password"] or None, mqtt["keepalive"], ssl)
    else:
        from mqtt_client import MQTTClient

        client = MQTTClient(client_id, mqtt["host"], mqtt["port"], mqtt["user"] or None,
                            mqtt["password"] or None, mqtt["keepalive"], ssl,
                            timeout_ms=_CONNECT_TIMEOUT_MS, rx_size=RX_BYTES)
    return client
