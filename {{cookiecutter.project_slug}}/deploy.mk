{%- set name = cookiecutter.project_slug.replace('_', '-') -%}
# Container and Kubernetes targets, included by the Makefile. Why the image and the manifests
# look the way they do: docs/container.md and docs/kubernetes.md.
#
#   make build                      image $(IMAGE):$(TAG) with docker, or podman
#   make push                       push it and record the digest the registry stored
#   make deploy OVERLAY=prod        apply k8s/overlays/prod with that digest, migrate, wait
#   make manifests OVERLAY=prod     print what deploy would apply
#   make logs / make undeploy
#
# Everything is a variable: `make deploy OVERLAY=prod TAG=1.4.2 KUBECTL="kubectl --context prod"`.

#> IMAGE             image name without tag
IMAGE ?= {{ cookiecutter.image_name }}
# The git commit, with `-dirty` when the work tree has changes: every build gets its own tag,
# never a moving `latest`. `dev` outside git.
GIT_TAG := $(shell sha=$$(git rev-parse --short=12 HEAD 2>/dev/null) && \
	echo "$$sha$$(test -z "$$(git status --porcelain -- . 2>/dev/null)" || echo -dirty)")
#> TAG               image tag (default: the git commit, -dirty with changes; dev outside git)
TAG ?= $(or $(GIT_TAG),dev)
# Deploys pin the image by digest (image@sha256:...), so a new build always rolls the pods and a
# tag moved in the registry changes nothing. `make push` records the digest the registry stored
# for IMAGE:TAG in this git-ignored file; DIGEST=sha256:... deploys an image pushed elsewhere.
DIGESTS_FILE := .image-digests
#> DIGEST            sha256:... of the image to deploy (default: the one make push recorded)
DIGEST ?= $(shell awk -v ref='$(IMAGE):$(TAG)' '$$1 == ref {digest = $$2} END {print digest}' $(DIGESTS_FILE) 2>/dev/null)
#> OVERLAY           k8s/overlays/NAME to deploy: dev or prod
OVERLAY ?= dev
#> KUBECTL           the kubectl command, e.g. "kubectl --context prod"
KUBECTL ?= kubectl
# A CA bundle for downloads inside the build, for networks behind a TLS-intercepting proxy. It is
# passed as a build secret: it never lands in a layer. Example: CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
#> CA_BUNDLE         CA bundle file for downloads inside the build (TLS-intercepting proxy)
CA_BUNDLE ?=
#> BUILD_ARGS        extra options for the engine's build command
BUILD_ARGS ?=
ROLLOUT_TIMEOUT ?= 10m
MIGRATE_TIMEOUT ?= 900

APP_NAME := {{ name }}
NAMESPACE_dev := {{ cookiecutter.k8s_namespace }}-dev
NAMESPACE_prod := {{ cookiecutter.k8s_namespace }}
NAMESPACE ?= $(NAMESPACE_$(OVERLAY))
HAS_MIGRATE_JOB := {{ "yes" if cookiecutter.database == "postgresql" else "" }}

# docker where a daemon answers, else podman; CONTAINER_ENGINE=podman forces one.
#> CONTAINER_ENGINE  docker or podman (default: docker where a daemon answers, else podman)
CONTAINER_ENGINE ?= $(shell if docker info >/dev/null 2>&1; then echo docker; \
	elif command -v podman >/dev/null 2>&1; then echo podman; fi)

# A scratch kustomization that adds the image digest (or, before a push, the tag) and the version label to the chosen overlay,
# so the tracked files never change on deploy. kustomize wants a relative path to the overlay.
# Made only for the goals that use it, and removed by them.
DEPLOY_DIR := $(if $(filter manifests deploy undeploy,$(MAKECMDGOALS)),$(shell mktemp -d))
define kustomization
resources:
  - $(shell realpath --relative-to=$(DEPLOY_DIR) k8s/overlays/$(OVERLAY) 2>/dev/null)
images:
  - name: {{ cookiecutter.image_name }}
    newName: $(IMAGE)
    $(if $(DIGEST),digest: $(DIGEST),newTag: "$(TAG)")
labels:
  - pairs:
      app.kubernetes.io/version: "$(TAG)"
endef
export kustomization

ENGINE_NAME = $(notdir $(firstword $(CONTAINER_ENGINE)))

.PHONY: build push deploy undeploy logs manifests _need_engine _need_kubectl _need_cluster _need_overlay _need_digest _kustomization

build: _need_engine ## Build the image IMAGE:TAG (docker where a daemon runs, else podman)
	@test -f uv.lock || { echo "make build: uv.lock is missing: run 'make lock' first." >&2; exit 1; }
	DOCKER_BUILDKIT=1 $(CONTAINER_ENGINE) build \
		--tag $(IMAGE):$(TAG) \
		--build-arg VERSION=$(TAG) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		$(if $(filter podman,$(ENGINE_NAME)),--format docker) \
		$(if $(CA_BUNDLE),--secret id=ca$(comma)src=$(CA_BUNDLE)) \
		$(BUILD_ARGS) .

# The digest comes from the push itself: podman writes it to --digestfile, docker prints
# `TAG: digest: sha256:... size: N`. It is what the registry stored, so deploy pins exactly it.
push: _need_engine ## Push IMAGE:TAG and record its digest for deploy
	@log=$$(mktemp) && digestfile=$$(mktemp) && trap 'rm -f "$$log" "$$digestfile"' EXIT; \
	echo "$(CONTAINER_ENGINE) push $(IMAGE):$(TAG)"; \
	$(CONTAINER_ENGINE) push $(if $(filter podman,$(ENGINE_NAME)),--digestfile "$$digestfile") \
		$(IMAGE):$(TAG) 2>&1 | tee "$$log"; \
	test "$${PIPESTATUS[0]}" = 0 || exit 1; \
	digest=$$({ cat "$$digestfile"; grep -o 'digest: sha256:[0-9a-f]\{64\}' "$$log"; } \
		| grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1); \
	test -n "$$digest" || { echo "make push: the push did not report a digest for $(IMAGE):$(TAG)." >&2; exit 1; }; \
	echo "$(IMAGE):$(TAG) $$digest" >> $(DIGESTS_FILE); \
	echo "Pushed $(IMAGE)@$$digest (recorded in $(DIGESTS_FILE): make deploy pins it)."

manifests: _need_kubectl _kustomization ## Print what deploy would apply for OVERLAY (dev or prod)
	@$(if $(DIGEST),,echo "make manifests: $(IMAGE):$(TAG) was not pushed from here, so the image is shown by tag; make deploy pins the digest that make push records." >&2;) \
	$(KUBECTL) kustomize $(DEPLOY_DIR); status=$$?; rm -rf $(DEPLOY_DIR); exit $$status

deploy: _need_cluster _need_digest _kustomization ## Apply OVERLAY with the pushed image's digest, migrate, wait for the rollout
	@$(KUBECTL) -n $(NAMESPACE) get secret $(APP_NAME) >/dev/null 2>&1 || { \
		echo "make deploy: the Secret '$(APP_NAME)' does not exist in namespace '$(NAMESPACE)'." >&2; \
		echo "Create the namespace and the Secret first (see k8s/secret.example.yaml), e.g.:" >&2; \
		echo "  $(KUBECTL) create namespace $(NAMESPACE)" >&2; \
		echo "  $(KUBECTL) -n $(NAMESPACE) create secret generic $(APP_NAME) --from-literal=DJANGO_SECRET_KEY=... {% if cookiecutter.database == 'postgresql' %}--from-literal=DATABASE_URL=postgres://...{% endif %}{% if cookiecutter.amqp_consumer == 'yes' %} --from-literal=AMQP_URL=amqps://...{% endif %}{% if cookiecutter.websockets == 'yes' %} --from-literal=REDIS_URL=redis://...{% endif %}{% if cookiecutter.celery != 'no' %} --from-literal=CELERY_BROKER_URL={{ 'amqps' if cookiecutter.celery == 'rabbitmq' else 'rediss' }}://...{% endif %}" >&2; \
		rm -rf $(DEPLOY_DIR); exit 1; }
	@# A Job's pod template is immutable: the previous migration Job goes before the new one.
	$(if $(HAS_MIGRATE_JOB),$(KUBECTL) -n $(NAMESPACE) delete job $(APP_NAME)-migrate --ignore-not-found --wait=true)
	$(KUBECTL) apply -k $(DEPLOY_DIR)
	@rm -rf $(DEPLOY_DIR)
ifneq ($(HAS_MIGRATE_JOB),)
	@echo "Waiting for the migration Job (at most $(MIGRATE_TIMEOUT) s)..."
	@for _ in $$(seq $$(( $(MIGRATE_TIMEOUT) / 2 ))); do \
		state=$$($(KUBECTL) -n $(NAMESPACE) get job $(APP_NAME)-migrate \
			-o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}'); \
		case "$$state" in \
			*Complete*) echo "Migrations applied."; exit 0 ;; \
			*Failed*) echo "make deploy: the migration Job failed:" >&2; \
				$(KUBECTL) -n $(NAMESPACE) logs job/$(APP_NAME)-migrate --tail=50 >&2; exit 1 ;; \
		esac; sleep 2; \
	done; echo "make deploy: the migration Job did not finish within $(MIGRATE_TIMEOUT) s." >&2; exit 1
endif
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/$(APP_NAME) --timeout=$(ROLLOUT_TIMEOUT)
{%- if cookiecutter.amqp_consumer == "yes" %}
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/$(APP_NAME)-consumer --timeout=$(ROLLOUT_TIMEOUT)
{%- endif %}
{%- if cookiecutter.celery != "no" %}
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/$(APP_NAME)-celery-worker --timeout=$(ROLLOUT_TIMEOUT)
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/$(APP_NAME)-celery-beat --timeout=$(ROLLOUT_TIMEOUT)
{%- endif %}

undeploy: _need_cluster _kustomization ## Delete everything OVERLAY created (its namespace too, with the Secret)
	$(KUBECTL) delete -k $(DEPLOY_DIR) --ignore-not-found --wait=false; status=$$?; rm -rf $(DEPLOY_DIR); exit $$status

logs: _need_cluster ## Follow the logs of every pod of OVERLAY
	$(KUBECTL) -n $(NAMESPACE) logs -f --prefix --tail=100 --max-log-requests=20 \
		-l app.kubernetes.io/name=$(APP_NAME),app.kubernetes.io/component=web

comma := ,

_need_engine:
	@test -n "$(CONTAINER_ENGINE)" || { echo "make $(MAKECMDGOALS): no container engine: no docker daemon answers and podman is not installed. Start Docker, or install podman." >&2; exit 1; }
	@command -v $(firstword $(CONTAINER_ENGINE)) >/dev/null 2>&1 || { echo "make $(MAKECMDGOALS): '$(CONTAINER_ENGINE)' is not installed." >&2; exit 1; }

_need_kubectl:
	@command -v $(firstword $(KUBECTL)) >/dev/null 2>&1 || { echo "make $(MAKECMDGOALS): kubectl is not installed (https://kubernetes.io/docs/tasks/tools/)." >&2; rm -rf $(DEPLOY_DIR); exit 1; }

_need_overlay:
	@test -d k8s/overlays/$(OVERLAY) && test -n "$(NAMESPACE)" || { echo "make $(MAKECMDGOALS): OVERLAY=$(OVERLAY) is not one of: $(notdir $(wildcard k8s/overlays/*))." >&2; rm -rf $(DEPLOY_DIR); exit 1; }

_need_cluster: _need_kubectl _need_overlay
	@$(KUBECTL) config current-context >/dev/null 2>&1 || { echo "make $(MAKECMDGOALS): kubectl has no current context: point it at a cluster first (kubectl config use-context NAME)." >&2; rm -rf $(DEPLOY_DIR); exit 1; }
	@$(KUBECTL) version --request-timeout=10s >/dev/null 2>&1 || { echo "make $(MAKECMDGOALS): the cluster of context '$$($(KUBECTL) config current-context)' does not answer." >&2; rm -rf $(DEPLOY_DIR); exit 1; }

_need_digest:
	@test -n "$(DIGEST)" || { echo "make $(MAKECMDGOALS): no digest for $(IMAGE):$(TAG): run 'make build push' first (it records the digest in $(DIGESTS_FILE)), or give DIGEST=sha256:... of an image pushed elsewhere." >&2; rm -rf $(DEPLOY_DIR); exit 1; }

_kustomization: _need_overlay
	@echo "$(DIGEST)" | grep -qE '^(sha256:[0-9a-f]{64})?$$' || { echo "make $(MAKECMDGOALS): DIGEST=$(DIGEST) is not of the form sha256:<64 hex digits>." >&2; rm -rf $(DEPLOY_DIR); exit 1; }
	@echo "$$kustomization" > $(DEPLOY_DIR)/kustomization.yaml
