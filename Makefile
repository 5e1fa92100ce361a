# Switchboard developer entry points. Quick start: `make up`, then `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY    := .venv/bin/python
STACK := infra/stack.sh
BUF   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/switchboard/tools/bin/buf

.PHONY: help setup up down status logs test test-unit test-integration proto proto-check topics network alerts dashboards dockerfiles k8s lint fmt typecheck

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: ## Install tools, Python dependencies and the stack's components (idempotent)
	@scripts/bootstrap.sh
	@$(STACK) install

up: setup ## Start the whole local stack on 127.0.0.1 and show its status
	@$(STACK) up

down: ## Stop everything `make up` started (by PID)
	@$(STACK) down

status: ## Health of every component
	@$(STACK) status

logs: ## Follow the logs (make logs C=kafka for one component)
	@$(STACK) logs $(C)

test: ## Install, start the stack, lint + unit + integration tests, stop what was started
	@scripts/test.sh

test-unit: ## Unit and contract tests (no stack needed)
	@$(PY) -m pytest services infra/model-server/tests infra/lag-exporter/tests tests/contract

test-integration: ## Integration tests against a running stack (make up)
	@$(PY) -m pytest tests/integration

proto: ## Regenerate Python code from proto/
	@$(PY) scripts/gen_protos.py

proto-check: ## Fail if generated code is stale; buf lint
	@$(PY) scripts/gen_protos.py --check
	@cd proto && $(BUF) lint

topics: ## Render infra/kafka/topics.yaml as Strimzi KafkaTopic resources
	@$(PY) scripts/render_topics.py

network: ## Render deploy/k8s/network/flows.yaml as NetworkPolicies
	@$(PY) scripts/render_network.py

alerts: ## Render deploy/prometheus/alerts.yaml as the cluster's PrometheusRule
	@$(PY) scripts/render_alerts.py

dashboards: ## Write the Grafana dashboards of deploy/grafana/dashboards.yaml as JSON
	@$(PY) scripts/render_dashboards.py

dockerfiles: ## Write every service's Dockerfile from the one template
	@$(PY) scripts/render_dockerfiles.py

k8s: ## Render deploy/k8s with kustomize and validate it with kubeconform
	@scripts/k8s_check.sh

fmt: ## Format and auto-fix
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

typecheck: ## mypy --strict on the common library
	@$(PY) -m mypy -p switchboard.common

lint: proto-check typecheck ## All static checks
	@$(PY) scripts/render_topics.py --check
	@$(PY) scripts/render_network.py --check
	@$(PY) scripts/render_alerts.py --check
	@$(PY) scripts/render_dashboards.py --check
	@$(PY) scripts/render_dockerfiles.py --check
	@$(PY) -m ruff format --check .
	@$(PY) -m ruff check .
	@bash -n infra/*.sh infra/*/*.sh scripts/*.sh
