"""Guidelines that tie the manifests to the runtime: each takes one ``PodContext``.

Probe and shutdown rules apply to long-running containers that run the runtime; the security,
resource and image rules to every container of every workload (Jobs and init containers too).
"""

import re
from collections.abc import Iterator

from .manifests import PodContext
from .registry import Finding, guideline

K8S_DOC = "docs/kubernetes.md"
DEFAULT_GRACE_PERIOD = 30  # Kubernetes' default terminationGracePeriodSeconds

# Probe field of the pod -> the runtime option naming its path.
PROBES = {
    "startupProbe": "startup_probe",
    "readinessProbe": "readiness_probe",
    "livenessProbe": "liveness_probe",
}
REQUIRED_PROBES = ("readinessProbe", "livenessProbe")


def _runtime(context: PodContext) -> bool:
    return context.long_running and context.config is not None and not context.config.no_probe


def _probe_port(context: PodContext, probe: dict) -> tuple[int | None, str]:
    """The port number a probe asks, and how the manifest names it."""
    port = (probe.get("httpGet") or {}).get("port")
    if isinstance(port, int):
        return port, str(port)
    if isinstance(port, str) and port.isdigit():
        return int(port), port
    return context.ports.get(str(port)), f"{port!r}"


@guideline(
    "hurricane.E101",
    "The container's runtime options are invalid",
    "Fix the HURRICANE_ variable or serve flag of the container that the message names.",
    "docs/runtime.md#options",
    scope="pod",
)
def invalid_container_options(context: PodContext) -> Iterator[Finding]:
    if context.config_error:
        yield Finding(f"{context.label}: {context.config_error}", line=context.line("env"))


@guideline(
    "hurricane.W102",
    "A probe is missing or does not ask the runtime over HTTP",
    "Give the container httpGet readiness and liveness probes on the runtime's probe port "
    "(and a startup probe for slow starts).",
    f"{K8S_DOC}#probes-come-from-the-runtime-on-their-own-port",
    scope="pod",
)
def missing_probes(context: PodContext) -> Iterator[Finding]:
    if not _runtime(context):
        return
    for field in PROBES:
        probe = context.container.get(field)
        if probe is None and field in REQUIRED_PROBES:
            yield Finding(f"{context.label} has no {field}", line=context.line())
        elif probe is not None and "httpGet" not in probe:
            yield Finding(f"{context.label}: {field} is not an httpGet", line=context.line(field))


@guideline(
    "hurricane.E103",
    "A probe asks another port than the runtime's probe port",
    "Point every probe at the probe port (HURRICANE_PROBE_PORT), declared as a named "
    "containerPort.",
    f"{K8S_DOC}#probes-come-from-the-runtime-on-their-own-port",
    scope="pod",
)
def probe_port_mismatch(context: PodContext) -> Iterator[Finding]:
    if not _runtime(context):
        return
    app_port = getattr(context.config, "port", None)
    for field in PROBES:
        probe = context.container.get(field) or {}
        if "httpGet" not in probe:
            continue
        number, shown = _probe_port(context, probe)
        if field == "livenessProbe" and number is not None and number == app_port:
            continue  # hurricane.E105 says it more precisely
        if number != context.config.probe_port:
            what = "an undeclared port name" if number is None else f"port {number}"
            yield Finding(
                f"{context.label}: {field} asks {shown} ({what}), the runtime's probes "
                f"listen on {context.config.probe_port}",
                line=context.line(field, "httpGet", "port"),
            )


@guideline(
    "hurricane.E104",
    "A probe asks another path than the runtime serves",
    "Use the runtime's probe paths (/startup, /ready, /alive unless HURRICANE_*_PROBE says "
    "otherwise) for the matching probe.",
    f"{K8S_DOC}#probes-come-from-the-runtime-on-their-own-port",
    scope="pod",
)
def probe_path_mismatch(context: PodContext) -> Iterator[Finding]:
    if not _runtime(context):
        return
    for field, option in PROBES.items():
        probe = context.container.get(field) or {}
        if "httpGet" not in probe:
            continue
        path = probe["httpGet"].get("path", "/")
        expected = getattr(context.config, option)
        if path != expected:
            yield Finding(
                f"{context.label}: {field} asks {path}, the runtime answers it on {expected}",
                line=context.line(field, "httpGet", "path"),
            )


@guideline(
    "hurricane.E105",
    "The liveness probe asks the app port",
    "Ask liveness on the probe port: on the app port a busy pod fails liveness and is "
    "restarted exactly when it is needed most.",
    f"{K8S_DOC}#probes-come-from-the-runtime-on-their-own-port",
    scope="pod",
)
def liveness_on_app_port(context: PodContext) -> Iterator[Finding]:
    if not _runtime(context) or not hasattr(context.config, "port"):
        return
    probe = context.container.get("livenessProbe") or {}
    if "httpGet" in probe and _probe_port(context, probe)[0] == context.config.port:
        yield Finding(
            f"{context.label}: livenessProbe asks the app port {context.config.port}",
            line=context.line("livenessProbe", "httpGet", "port"),
        )


def _prestop_seconds(container: dict) -> float:
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return float((pre_stop["sleep"] or {}).get("seconds", 0))
    command = " ".join(str(word) for word in (pre_stop.get("exec") or {}).get("command") or [])
    match = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", command)
    return float(match.group(1)) if match else 0.0


@guideline(
    "hurricane.E106",
    "The grace period ends before the runtime has drained",
    "Set terminationGracePeriodSeconds to at least preStop sleep + shutdown delay + drain "
    "timeout, plus a few seconds of margin.",
    "docs/runtime.md#shutdown-and-terminationgraceperiodseconds",
    scope="pod",
)
def grace_period_too_short(context: PodContext) -> Iterator[Finding]:
    if not (context.long_running and context.config is not None):
        return
    grace = context.pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)
    prestop = _prestop_seconds(context.container)
    if context.celery:
        # Celery's shutdown is its own: the soft shutdown window (0 for beat, which holds no
        # task), not the runtime's drain.
        needed = prestop + context.celery_soft_shutdown
        parts = f"soft shutdown window {context.celery_soft_shutdown:g}"
    else:
        needed = prestop + context.config.shutdown_delay + context.config.drain_timeout
        parts = (
            f"shutdown delay {context.config.shutdown_delay:g} + drain timeout "
            f"{context.config.drain_timeout:g}"
        )
    if grace < needed:
        given = "the default 30s" if "terminationGracePeriodSeconds" not in context.pod else ""
        yield Finding(
            f"{context.label}: terminationGracePeriodSeconds {given or grace} < preStop "
            f"{prestop:g} + {parts} = {needed:g}",
            line=context.pod_line("terminationGracePeriodSeconds"),
        )


# Kinds whose replicas run side by side; a Pod or Job is one process by construction.
REPLICATED_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"}


@guideline(
    "hurricane.E110",
    "Celery beat can run twice",
    "Run beat as a Deployment of its own with replicas: 1 and strategy: Recreate: two beats "
    "send every periodic task twice.",
    "docs/celery.md#beat-is-a-singleton",
    scope="pod",
)
def celery_beat_not_singleton(context: PodContext) -> Iterator[Finding]:
    if context.workload != "celery beat" or context.kind not in REPLICATED_KINDS:
        return
    spec = context.document.data.get("spec") or {}
    where = context.document.line_of("spec")
    if context.kind == "DaemonSet":
        yield Finding(f"{context.label}: a DaemonSet runs beat on every node", line=where)
        return
    replicas = spec.get("replicas", 1)
    if replicas != 1:
        yield Finding(
            f"{context.label}: replicas {replicas}, beat must run once",
            line=context.document.line_of("spec", "replicas"),
        )
    strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
    if context.kind == "Deployment" and strategy != "Recreate":
        yield Finding(
            f"{context.label}: strategy {strategy} runs the old and the new beat together "
            "during a rollout",
            line=context.document.line_of("spec", "strategy"),
        )


def _security_gaps(context: PodContext) -> list[str]:
    pod = context.pod.get("securityContext") or {}
    own = context.container.get("securityContext") or {}

    def effective(key):
        return own.get(key, pod.get(key))

    gaps = []
    if effective("runAsNonRoot") is not True or effective("runAsUser") == 0:
        gaps.append("runAsNonRoot: true")
    if own.get("allowPrivilegeEscalation") is not False:
        gaps.append("allowPrivilegeEscalation: false")
    if "ALL" not in ((own.get("capabilities") or {}).get("drop") or []):
        gaps.append("capabilities.drop: [ALL]")
    if own.get("readOnlyRootFilesystem") is not True:
        gaps.append("readOnlyRootFilesystem: true")
    if (effective("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        gaps.append("seccompProfile.type: RuntimeDefault")
    return gaps


@guideline(
    "hurricane.W107",
    "The container is not restricted",
    "Set the securityContext the Pod Security Standard 'restricted' asks for, plus a "
    "read-only root file system.",
    f"{K8S_DOC}#pod-security-standard-restricted",
    scope="pod",
)
def not_restricted(context: PodContext) -> Iterator[Finding]:
    gaps = _security_gaps(context)
    if gaps:
        yield Finding(
            f"{context.label} lacks {', '.join(gaps)}", line=context.line("securityContext")
        )


@guideline(
    "hurricane.W108",
    "The container has no resource requests or memory limit",
    "Request CPU and memory (scheduling, autoscaling) and limit memory (a leak restarts one "
    "pod instead of starving the node).",
    f"{K8S_DOC}#resources",
    scope="pod",
)
def missing_resources(context: PodContext) -> Iterator[Finding]:
    resources = context.container.get("resources") or {}
    missing = [
        name
        for name, value in (
            ("requests.cpu", (resources.get("requests") or {}).get("cpu")),
            ("requests.memory", (resources.get("requests") or {}).get("memory")),
            ("limits.memory", (resources.get("limits") or {}).get("memory")),
        )
        if value in (None, "")
    ]
    if missing:
        yield Finding(
            f"{context.label} sets no {', '.join(missing)}", line=context.line("resources")
        )


@guideline(
    "hurricane.W109",
    "The image is not pinned by digest",
    "Deploy image@sha256:... (`make deploy` after `make push`, or `kustomize edit set image "
    "NAME@DIGEST`), so every pod runs the same bytes and a new build rolls the pods.",
    f"{K8S_DOC}#every-deploy-rolls-images-pinned-by-digest",
    scope="pod",
)
def image_not_pinned(context: PodContext) -> Iterator[Finding]:
    image = str(context.container.get("image") or "")
    if "@sha256:" not in image:
        yield Finding(f"{context.label} runs {image or 'no image'}", line=context.line("image"))
