# Stand-in for micropython-lib's umqtt.simple (1.x), which is frozen into ESP32 firmware
# but cannot be installed from PyPI. It has umqtt.simple's API and its behaviour where it
# matters to the node: publish with QoS 1 blocks until the PUBACK, with no bound; no
# inflight list, no close(), no timeouts on wait_msg; no keepalive pings of its own (the
# caller pings); connect() asserts on a CONNACK it did not expect. Built on lib/mqtt for
# the wire.
from mqtt_client import MQTTClient as _OurClient
from mqtt_client import MQTTException


class _Wire(_OurClient):
    def _keepalive(self):
        pass  # umqtt.simple sends PINGREQ only when its user calls ping()


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None,
                 ssl_params={}):
        self._wire = _Wire(client_id, server, port, user, password, keepalive, ssl, ssl_params)
        self.server = server
        self.port = self._wire.port
        self.keepalive = keepalive
        self.sock = None

    def set_callback(self, f):
        self._wire.set_callback(f)

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._wire.set_last_will(topic, msg, retain, qos)

    def connect(self, clean_session=True):
        try:
            present = self._wire.connect(clean_session)
        except MQTTException as exc:
            if exc.args and exc.args[0] == -1:  # umqtt.simple: assert resp[0] == 0x20 and resp[1] == 0x02
                raise AssertionError() from None
            raise
        self.sock = self._wire.sock
        return present

    def disconnect(self):
        self._wire.disconnect()
        self.sock = None

    def ping(self):
        self._wire.ping()

    def publish(self, topic, msg, retain=False, qos=0):
        pid = self._wire.publish(topic, msg, retain, qos)
        while qos == 1 and pid in self._wire.inflight:
            self._wire.wait_msg(1000)

    def subscribe(self, topic, qos=0):
        self._wire.subscribe(topic, qos)

    def wait_msg(self):
        while self._wire.wait_msg(1000) is None:
            pass

    def check_msg(self):
        self._wire.check_msg()
