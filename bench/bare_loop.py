# The baseline the firmware is measured against: the barest MicroPython loop that
# answers commands over MQTT, with lib/mqtt's client. It subscribes to
# bare/<CLIENT_ID>/commands, answers each JSON command {"command_id": ...} on
# bare/<CLIENT_ID>/response, says "online" (retained) on bare/<CLIENT_ID>/status after
# each connect, and reconnects when the broker drops it. Nothing else: no sensors,
# no config, no queue, no safety.
# Usage: micropython -X heapsize=N -m bare_loop HOST PORT CLIENT_ID
import json
import sys

from mqtt_client import MQTTClient, MQTTException
from ticks import sleep_ms

_RETRY_MS = 500


def main():
    host, port, client_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    prefix = "bare/%s/" % client_id
    response_topic = prefix + "response"
    client = MQTTClient(client_id, host, port, keepalive=30)

    def answer(topic, msg):
        command = json.loads(msg)
        client.publish(response_topic, json.dumps({"command_id": command["command_id"], "success": True}), False, 1)

    client.set_callback(answer)
    while True:
        try:
            client.connect()
            client.subscribe(prefix + "commands", 1)
            client.publish(prefix + "status", "online", True, 1)
            while True:
                client.wait_msg(1000)
        except (OSError, MQTTException) as exc:
            print("link lost: %r" % (exc,))
            client.close()
            sleep_ms(_RETRY_MS)


main()
