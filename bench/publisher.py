# Device side of the latency benchmark: publishes COUNT QoS 1 messages through
# lib/mqtt to the broker at HOST:PORT, each carrying its send time in ns, GAP_MS apart.
# Usage: publisher.py HOST PORT COUNT GAP_MS
import sys
import time

from mqtt_client import MQTTClient
from ticks import sleep_ms


def main():
    host, port, count, gap_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    client = MQTTClient("bench-publisher", host, port, keepalive=30)
    client.connect()
    for i in range(count):
        client.publish("bench/latency", "%d %d" % (i, time.time_ns()), False, 1)
        client.check_msg()
        sleep_ms(gap_ms)
    for _ in range(200):
        if not client.inflight:
            break
        client.wait_msg(10)
    client.disconnect()
    print("sent", count)


main()
