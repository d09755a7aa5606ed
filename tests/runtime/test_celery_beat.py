"""A real ``celery beat`` with the runtime's probes: started after its first tick, alive while
it ticks, 503 when a tick is stuck."""

import re
import signal

from celery_helpers import poll

FAST_BEAT = {
    "TESTPROJECT_BEAT_MAX_INTERVAL": "1",  # beat ticks at least once a second
    "HURRICANE_BEAT_TICK_TIMEOUT": "2",
}


def test_beat_is_started_after_its_first_tick_and_alive_while_it_ticks(start_celery, redis_url):
    beat = start_celery("beat", broker_url=redis_url, env=FAST_BEAT)
    assert beat.probe("/startup")[0] == 200
    assert beat.probe("/ready")[0] == 200
    assert "beat probes on" in beat.output()
    # Twice the 3 s limit (max interval 1 s + tick timeout 2 s).
    assert set(poll(lambda: beat.probe("/alive")[0], 6)) == {200}
    assert "Scheduler: Sending due task add-every-second" in beat.output()


def test_a_wedged_beat_tick_turns_liveness_503(start_celery, rabbitmq_url):
    beat = start_celery(
        "beat", broker_url=rabbitmq_url, env={**FAST_BEAT, "TESTPROJECT_WEDGE_SECONDS": "8"}
    )
    assert beat.probe("/alive")[0] == 200
    beat.signal(signal.SIGUSR2)  # the test project blocks beat's main thread for 8 s
    body = beat.wait_probe("/alive", 503, timeout=8)
    stuck_for = re.search(r"beat is stuck: no tick for ([0-9.]+)s", body["reasons"][0])
    assert stuck_for and float(stuck_for[1]) >= 3, body  # the limit: 1 s + 2 s (age to 0.1 s)
    beat.wait_probe("/alive", 200, timeout=15)
    assert beat.probe("/ready")[0] == 200
