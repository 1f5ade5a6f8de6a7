# Readings taken while offline are kept on flash (lib/outbox) by the session, so a
# reset during an outage loses none; online, the flash is not written.
import json

from firmware.session import Session
from outbox import Outbox
from sessionkit import FakeClient
from testkit import exists, read_text, tmpdir, write_text


def session_with(path, client=None, queue_max=50):
    client = client or FakeClient()
    session = Session(client, "farm/n1/status", "offline", [], None, lambda text: None,
                      queue_max, 16384, Outbox(path, 4096))
    session.online_payload = lambda: "online"
    return session, client


def go_offline(session, client):
    client.up = False
    session._lost(OSError("cut"))


def reconnect(session, client):
    client.up = True
    session._next_try = 0
    session.poll(True)
    assert session.connected


def telemetry(client):
    return [bytes(msg).decode() if not isinstance(msg, str) else msg
            for topic, msg in client.delivered if topic == "farm/n1/telemetry"]


def test_outbox_gives_messages_back_in_order_and_skips_a_cut_line():
    path = tmpdir() + "/outbox.txt"
    box = Outbox(path, 200)
    box.append("farm/n1/telemetry", '{"seq": 0}')
    box.append("farm/n1/telemetry", b'{"seq": 1}')
    write_text(path, read_text(path) + '10\tfarm/n1/telemetry\t{"seq": 2')  # a reset mid-append
    box = Outbox(path, 200)  # the next boot seals the cut line
    box.append("farm/n1/telemetry", '{"seq": 3}')
    assert box.take(10) == [("farm/n1/telemetry", b'{"seq": 0}'), ("farm/n1/telemetry", b'{"seq": 1}'),
                            ("farm/n1/telemetry", b'{"seq": 3}')]
    assert box.unreadable == 1 and len(box) == 0
    box.rewind()
    assert len(box.take(2)) == 2 and len(box.take(2)) == 1


def test_a_full_outbox_drops_its_oldest_half_and_counts_it():
    path = tmpdir() + "/outbox.txt"
    box = Outbox(path, 1000)
    dropped = 0
    for seq in range(100):
        dropped += box.append("t", '{"seq": %d}' % seq)  # 17 or 18 bytes a line
    seqs = [int(payload[8:-1]) for _, payload in box.take(100)]
    assert seqs == list(range(100 - len(seqs), 100)) and dropped == 100 - len(seqs), (dropped, seqs)
    assert box.size <= 1000 and len(seqs) > 1000 // 18 // 2
    assert box.append("t", "x" * 2000) == 1  # larger than the bound: never kept, counted
    box.clear()
    assert not exists(path) and box.size == 0


def test_online_the_flash_is_not_written():
    path = tmpdir() + "/outbox.txt"
    session, client = session_with(path)
    reconnect(session, client)
    for seq in range(5):
        session.enqueue("farm/n1/telemetry", '{"seq": %d}' % seq)
    assert not exists(path) and len(telemetry(client)) == 5


def test_readings_taken_offline_survive_a_reset_and_leave_first():
    path = tmpdir() + "/outbox.txt"
    session, client = session_with(path)
    reconnect(session, client)
    session.enqueue("farm/n1/telemetry", '{"seq": 0}')  # sent, its PUBACK never comes
    go_offline(session, client)
    session.enqueue("farm/n1/telemetry", '{"seq": 1}')
    session.enqueue("farm/n1/telemetry", '{"seq": 2}')
    assert not client.inflight and not len(session.queue)  # all on flash
    # The device resets: a new session on the same file.
    after, client = session_with(path)
    after.enqueue("farm/n1/telemetry", '{"seq": 0, "boot": 2}')  # before the broker is back
    reconnect(after, client)
    after.enqueue("farm/n1/telemetry", '{"seq": 1, "boot": 2}')  # online: after the outbox
    assert exists(path)  # not until the broker has acknowledged it all
    client.ack()
    after.poll(True)
    assert not exists(path)
    assert telemetry(client) == ['{"seq": 0}', '{"seq": 1}', '{"seq": 2}', '{"seq": 0, "boot": 2}',
                                 '{"seq": 1, "boot": 2}'], telemetry(client)


def test_an_outage_while_the_outbox_is_sent_sends_it_again_whole():
    path = tmpdir() + "/outbox.txt"
    session, client = session_with(path)
    client.up = False
    for seq in range(40):
        session.enqueue("farm/n1/telemetry", '{"seq": %d}' % seq)
    reconnect(session, client)  # the client holds 16 in flight; no PUBACK yet
    assert len(telemetry(client)) == 15  # and the online status
    go_offline(session, client)
    session.enqueue("farm/n1/telemetry", '{"seq": 40}')
    client.delivered.clear()
    reconnect(session, client)
    while len(session.outbox):
        client.ack()
        session.poll(True)
    client.ack()
    session.poll(True)
    seqs = [int(msg[8:-1]) for msg in telemetry(client)]
    assert sorted(set(seqs)) == list(range(41)) and not exists(path), seqs


def test_the_unacknowledged_are_kept_but_not_a_retained_status():
    path = tmpdir() + "/outbox.txt"
    session, client = session_with(path)
    reconnect(session, client)  # the online status is in flight, retained
    session.enqueue("farm/n1/telemetry", '{"seq": 0}')
    go_offline(session, client)
    assert Outbox(path, 4096).take(10) == [("farm/n1/telemetry", b'{"seq": 0}')]


def test_a_failing_flash_is_logged_and_ram_keeps_the_readings_in_order():
    logs = []
    session = Session(FakeClient(), "s", "offline", [], None, logs.append, 5, 4096,
                      Outbox(tmpdir() + "/no-such-folder/outbox.txt", 4096))
    session.enqueue("farm/n1/telemetry", '{"seq": 0}')
    session.enqueue("farm/n1/telemetry", '{"seq": 1}')
    assert [payload for _, payload in (session.queue.pop(), session.queue.pop())] == ['{"seq": 0}', '{"seq": 1}']
    assert any("outbox:" in line and "not written" in line for line in logs), logs


def test_each_readings_dropped_count_includes_what_its_own_push_dropped():
    from nodekit import make_node

    chip, node = make_node()
    session = Session(FakeClient(), "farm/n1/status", "offline", [], None, lambda text: None, 3, 16384)
    node.link.session = session  # never connected: readings wait in a RAM queue of 3
    for _ in range(6):
        node.publish_reading({"moisture": 40.0}, {})
    kept = [json.loads(session.queue.pop()[1]) for _ in range(len(session.queue))]
    # seq 3, 4, 5 kept; seq 3's push dropped seq 0, so it says 1 already, and so on
    assert [(m["seq"], m["meta"]["dropped"]) for m in kept] == [(3, 1), (4, 2), (5, 3)], kept
    assert session.queue.dropped == 3


def test_room_made_on_flash_before_a_push_is_what_the_push_would_have_dropped():
    path = tmpdir() + "/room.txt"
    box = Outbox(path, 130)
    for seq in range(4):  # 4 lines of 32 bytes: 128 of 130
        assert box.append("farm/n1/telemetry", '{"seq": %d}' % seq) == 0
    dropped = box.make_room(len("farm/n1/telemetry"), len('{"seq": 4}'))
    assert dropped == 2 and box.append("farm/n1/telemetry", '{"seq": 4}') == 0  # nothing more to drop
    assert [payload for _, payload in box.take(10)] == [b'{"seq": 2}', b'{"seq": 3}', b'{"seq": 4}']
