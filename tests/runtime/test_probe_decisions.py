"""The probe decisions as functions of state and check results, without a server."""

from hurricane_runtime.config import ServeConfig
from hurricane_runtime.events import Observers
from hurricane_runtime.probes import Probes
from hurricane_runtime.server import AppServer
from hurricane_runtime.state import RuntimeState


class FakePool:
    def __init__(self, waiting=0, busy=0, alive=True):
        self.waiting, self.busy, self._alive = waiting, busy, alive

    def alive(self):
        return self._alive


def make_probes(backlog=2):
    config = ServeConfig.load({"backlog": str(backlog)}, None, {})
    state = RuntimeState()
    observers = Observers()
    events = []
    observers.state_changed.append(events.append)
    app_server = AppServer(config, state, observers)  # the health source of serve
    probes = Probes(config, state, observers, sources=[app_server])
    # Pretend one check run finished and passed, without starting check threads.
    probes.readiness_checks.result = []
    probes.liveness_checks.result = []
    return probes, state, events


def test_readiness_needs_a_finished_start():
    probes, state, _ = make_probes()
    assert probes.evaluate("readiness") == (False, ["starting"])
    state.started = True
    assert probes.evaluate("readiness") == (True, [])


def test_draining_and_a_saturated_backlog_fail_readiness_not_liveness():
    probes, state, _ = make_probes(backlog=2)
    state.started = True
    state.pool = FakePool(waiting=2)
    healthy, reasons = probes.evaluate("readiness")
    assert not healthy and "backlog saturated" in reasons[0]
    state.pool = FakePool(waiting=1)
    state.draining = True
    assert probes.evaluate("readiness") == (False, ["draining"])
    assert probes.evaluate("liveness") == (True, [])


def test_failing_checks_are_the_reasons():
    probes, state, _ = make_probes()
    state.started = True
    probes.readiness_checks.result = ["items.E001: cache down"]
    assert probes.evaluate("readiness") == (False, ["items.E001: cache down"])
    probes.liveness_checks.result = ["items.E002: stuck"]
    assert probes.evaluate("liveness") == (False, ["items.E002: stuck"])


def test_readiness_waits_for_a_first_check_run_but_liveness_does_not():
    probes, state, _ = make_probes()
    state.started = True
    probes.readiness_checks.result = None
    probes.liveness_checks.result = None
    healthy, reasons = probes.evaluate("readiness")
    assert not healthy and "first run" in reasons[0]
    assert probes.evaluate("liveness") == (True, [])


def test_a_dead_worker_thread_fails_liveness():
    probes, state, _ = make_probes()
    state.pool = FakePool(alive=False)
    assert probes.evaluate("liveness") == (False, ["a worker thread died"])


def test_events_only_when_a_probe_flips_and_state_is_recorded_every_time():
    probes, state, events = make_probes()
    for _ in range(3):
        probes.evaluate_all()
    assert events == []  # startup and readiness stay down, liveness stays up
    state.started = True
    probes.evaluate_all()
    probes.evaluate_all()
    assert [(e.probe, e.healthy) for e in events] == [("startup", True), ("readiness", True)]
    assert state.probe_healthy == {"startup": True, "readiness": True, "liveness": True}
    state.draining = True
    probes.evaluate_all()
    assert (events[-1].probe, events[-1].healthy, events[-1].reason) == (
        "readiness",
        False,
        "draining",
    )
    assert state.probe_healthy["readiness"] is False


def test_startup_failure_is_the_reason():
    probes, state, _ = make_probes()
    state.startup_error = "command 'migrate' failed"
    healthy, reasons = probes.evaluate("startup")
    assert not healthy and "command 'migrate' failed" in reasons[0]


def test_probe_server_routes():
    from hurricane_runtime.probes import ProbeServer

    probes, state, _ = make_probes()
    probes.refresh = lambda: None
    observers = probes.observers
    observers.probe_routes["/metrics"] = lambda: (200, "text/plain", b"m 1\n")
    server = ProbeServer(probes.config, probes, observers)
    state.started = True
    status, content_type, body, route = server.answer("GET", "/ready")
    assert (status, content_type, route) == (200, "application/json", "/ready")
    assert server.answer("GET", "/metrics") == (200, "text/plain", b"m 1\n", "/metrics")
    assert server.answer("GET", "/other")[0] == 404
    assert server.answer("DELETE", "/ready")[0] == 405


class ConsumerLikeSource:
    """Any object with the health-source methods adds its reasons to the probes."""

    def __init__(self):
        self.ready, self.alive, self.consuming = [], [], ["no Consume-Ok yet"]

    def startup_reasons(self):
        return self.consuming

    def readiness_reasons(self):
        return self.ready

    def liveness_reasons(self):
        return self.alive


def test_health_sources_add_their_reasons_to_every_probe():
    probes, state, _ = make_probes()
    source = ConsumerLikeSource()
    probes.add_source(source)
    state.started = True
    assert probes.evaluate("startup") == (False, ["no Consume-Ok yet"])
    source.consuming = []
    assert probes.evaluate("startup") == (True, [])
    source.ready = ["channel 'orders' closed"]
    assert probes.evaluate("readiness") == (False, ["channel 'orders' closed"])
    source.alive = ["disconnected for 600s"]
    assert probes.evaluate("liveness") == (False, ["disconnected for 600s"])


def test_an_answer_from_another_thread_is_published_on_the_owning_loop():
    """A probe thread answers at once; the owning loop records and publishes the change."""
    import asyncio
    import threading

    probes, state, events = make_probes()
    publishing_threads = []
    probes.observers.state_changed.append(
        lambda _event: publishing_threads.append(threading.get_ident())
    )
    loop = asyncio.new_event_loop()
    probes._loop, probes._loop_thread = loop, threading.get_ident()  # what start() records
    state.started = True
    answers = []
    other = threading.Thread(target=lambda: answers.append(probes.answer("readiness")))
    other.start()
    other.join(5)
    assert answers == [(True, [])]  # answered from state, without waiting for the loop
    assert events == [] and state.probe_healthy["readiness"] is False  # not recorded there
    loop.call_soon(loop.stop)
    loop.run_forever()  # the owning loop runs what the probe thread handed it
    loop.close()
    assert [(event.probe, event.healthy) for event in events] == [("readiness", True)]
    assert state.probe_healthy["readiness"] is True
    assert publishing_threads == [threading.get_ident()]
    other = threading.Thread(target=lambda: answers.append(probes.answer("readiness")))
    other.start()  # unchanged, and the owning loop is closed: nothing handed over, no error
    other.join(5)
    assert answers[-1] == (True, []) and len(events) == 1


def test_a_loop_watch_fails_liveness_once_the_heartbeat_is_older_than_its_limit():
    from hurricane_runtime.heartbeat import LoopWatch

    watch = LoopWatch(timeout=5, what="the consumer's event loop")
    probes, state, _ = make_probes()
    probes.add_source(watch)
    assert probes.evaluate("liveness") == (True, [])
    watch.heartbeat.last -= 6
    healthy, reasons = probes.evaluate("liveness")
    assert not healthy
    assert reasons[0].startswith("the consumer's event loop stuck: no heartbeat for 6.")
    assert reasons[0].endswith("(limit 5s)")
    watch.heartbeat.beat()
    assert probes.evaluate("liveness") == (True, [])
