{%- set name = cookiecutter.project_slug.replace('_', '-') -%}
# Local backing services from compose.yaml, included by the Makefile: `make services` starts
# them and waits until their health checks pass, `make services-down` stops them (their data
# stays in named volumes; `make services-down VOLUMES=1` removes it too).

#> COMPOSE           compose command (default: docker compose, podman compose, podman-compose or docker-compose, the first that works)
COMPOSE ?= $(shell \
	if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then echo docker compose; \
	elif command -v podman >/dev/null 2>&1 && podman compose version >/dev/null 2>&1; then echo podman compose; \
	elif command -v podman-compose >/dev/null 2>&1; then echo podman-compose; \
	elif command -v docker-compose >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker-compose; fi)
#> VOLUMES           make services-down VOLUMES=1 also deletes the services' data
VOLUMES ?=
SERVICES_TIMEOUT ?= 120

.PHONY: services services-down _need_compose

{% set postgresql = cookiecutter.database == "postgresql" -%}
{%- set rabbitmq = cookiecutter.__rabbitmq == "yes" -%}
{%- set names = (["PostgreSQL"] if postgresql else []) + (["RabbitMQ"] if rabbitmq else []) -%}
{% if postgresql or rabbitmq -%}
services: _need_compose ## Start the local services of compose.yaml ({{ names | join(", ") }}) and wait until they are healthy
	$(COMPOSE) up --detach
	@echo "Waiting for the services to be healthy (at most $(SERVICES_TIMEOUT) s)..."
{%- if postgresql %}
	@for _ in $$(seq $(SERVICES_TIMEOUT)); do \
		if $(COMPOSE) exec -T postgres pg_isready --quiet --host 127.0.0.1 --username {{ cookiecutter.project_slug }} --dbname {{ cookiecutter.project_slug }} >/dev/null 2>&1; then \
			echo "PostgreSQL is ready: database {{ cookiecutter.project_slug }} on 127.0.0.1:$${POSTGRES_PORT:-5432} (DATABASE_URL in .env)."; exit 0; fi; \
		sleep 1; \
	done; echo "make services: PostgreSQL did not become ready within $(SERVICES_TIMEOUT) s; see '$(COMPOSE) logs postgres'." >&2; exit 1
{%- endif %}
{%- if rabbitmq %}
	@for _ in $$(seq $(SERVICES_TIMEOUT)); do \
		if $(COMPOSE) exec -T rabbitmq rabbitmq-diagnostics --quiet check_port_connectivity >/dev/null 2>&1; then \
			echo "RabbitMQ is ready: AMQP on 127.0.0.1:$${RABBITMQ_PORT:-5672} (AMQP_URL in .env)."; exit 0; fi; \
		sleep 1; \
	done; echo "make services: RabbitMQ did not become ready within $(SERVICES_TIMEOUT) s; see '$(COMPOSE) logs rabbitmq'." >&2; exit 1
{%- endif %}

services-down: _need_compose ## Stop the local services (VOLUMES=1 also deletes their data)
	$(COMPOSE) down $(if $(VOLUMES),--volumes)

_need_compose:
	@test -n "$(COMPOSE)" || { echo "make $(MAKECMDGOALS): no compose tool works here: start Docker (with its compose plugin), or install podman with 'podman compose' or 'pip install podman-compose'." >&2; exit 1; }
{%- else -%}
services: ## Start local services (none: this project uses SQLite, a file)
	@echo "This project needs no backing services: SQLite is a file (db.sqlite3)."

services-down: ## Stop local services (none: this project uses SQLite)
	@echo "This project runs no backing services."
{%- endif %}
