# Every target installs what it needs first (uv, the venv from uv.lock, Prometheus/Alertmanager).
SHELL := /bin/bash
.DEFAULT_GOAL := help

LAB := .venv/bin/mlops-lab
BOOTSTRAP := scripts/bootstrap.sh

.PHONY: help up down status logs clean test lint bench venv

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv:
	@$(BOOTSTRAP) venv

up: ## Start the platform (RUNTIME=auto|local|kind|kube) and print its URLs
	@$(BOOTSTRAP) up $(or $(RUNTIME),auto)
	@$(LAB) up --runtime $(or $(RUNTIME),auto)

down: venv ## Stop everything, keep the data
	@$(LAB) down

status: venv ## Show each service's URL, state and health
	@$(LAB) status

logs: venv ## Show a service's log: make logs SERVICE=mlflow [FOLLOW=1]
	@test -n "$(SERVICE)" || { echo "usage: make logs SERVICE=<name> [FOLLOW=1]" >&2; exit 2; }
	@$(LAB) logs $(SERVICE) $(if $(FOLLOW),--follow)

clean: venv ## Stop everything and delete all platform data (asks first; YES=1 to skip)
	@$(LAB) clean $(if $(YES),--yes)

# Two workers on two cores; four when KUBECONFIG names a cluster: its end-to-end test mostly waits
# on the cluster, and three lab groups with a platform each wait on theirs about a fifth of the time.
WORKERS ?= $(if $(KUBECONFIG),4,2)

test: ## Run the test suite against real services (what CI runs) [WORKERS=2]
	@$(BOOTSTRAP) all
	.venv/bin/pytest -n $(WORKERS) --dist loadgroup --durations=25

# Leaves out the tests marked `platform`: tests/conftest.py marks every test that uses a running
# platform. Grouped by area as in `make test`, so an area's session fixtures are computed once.
.PHONY: test-fast
test-fast: ## Only the tests that start no service: static checks and unit tests (< 2 min)
	@$(BOOTSTRAP) all
	.venv/bin/pytest -m "not platform" -n 2 --dist loadgroup --durations=10

# pyright runs the Node.js and pyright that its wheels bundle (nothing downloaded); the variable
# stops it asking PyPI for a newer release on every run (uv.lock pins it).
lint: venv ## ruff (lint and format), import-linter (package layers) and pyright (types)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 .venv/bin/pyright

bench: ## Benchmarks against peers (~11 min; QUICK=1 ~5): table, JSON, plot [ONLY=serving,drift] [SKIP=loop]
	@$(BOOTSTRAP) all
	@.venv/bin/python -m benchmarks $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY)) \
		$(if $(SKIP),--skip $(SKIP))

.PHONY: traffic
traffic: venv ## Send requests to serving: [RPS=10] [DURATION=60] [SCENARIO=baseline] [FEEDBACK=0.2]
	@$(LAB) traffic $(if $(RPS),--rps $(RPS)) $(if $(DURATION),--duration $(DURATION)) \
		$(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(FEEDBACK),--feedback-rate $(FEEDBACK)) \
		$(if $(SEED),--seed $(SEED))

.PHONY: train
train: venv ## Train, register, quality-gate a model: [SCENARIO=baseline] [ROWS=] [SEED=] or DATA=x.csv TARGET=col
	@$(LAB) train $(if $(DATA),--data $(DATA) $(if $(TARGET),--target $(TARGET)), \
		$(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(ROWS),--rows $(ROWS))) $(if $(SEED),--seed $(SEED))

.PHONY: monitoring-assets
monitoring-assets: venv ## Regenerate committed alert rules, alertmanager.yml and Grafana dashboards
	@.venv/bin/python -m monitoring.assets

.PHONY: k8s-assets
k8s-assets: venv ## Regenerate the committed Kubernetes settings, monitoring resources and NodePorts
	@.venv/bin/python -m mlops_lab.runtime.kube.assets

.PHONY: drift
drift: venv ## Drift of recent traffic vs the champion, per feature: [WINDOW=1000] [HTML=report.html]
	@$(LAB) drift check $(if $(WINDOW),--window $(WINDOW)) $(if $(HTML),--html $(HTML))

.PHONY: lab hint check reset
lab: venv ## Start a lab: make lab N=02 [SEED=n] (breaks the running platform; prints the incident)
	@test -n "$(N)" || { $(LAB) lab list; echo "usage: make lab N=<id> [SEED=<n>]" >&2; exit 2; }
	@$(LAB) lab start $(N) $(if $(SEED),--seed $(SEED))

hint: venv ## The next hint for a lab: make hint N=02
	@test -n "$(N)" || { echo "usage: make hint N=<id>" >&2; exit 2; }
	@$(LAB) lab hint $(N)

check: venv ## Check a lab's fix: make check N=02 [WAIT=30] [WHY=1: why each NO fails, costs a hint]
	@test -n "$(N)" || { echo "usage: make check N=<id>" >&2; exit 2; }
	@$(LAB) lab check $(N) $(if $(WAIT),--wait $(WAIT)) $(if $(filter 1,$(WHY)),--why)

reset: venv ## Put the platform back to its golden state after a lab: make reset N=02
	@test -n "$(N)" || { echo "usage: make reset N=<id>" >&2; exit 2; }
	@$(LAB) lab reset $(N)

.PHONY: images
images: ## Build the platform's container images (wheelhouse in build/wheels, tags in build/image-tags.json)
	@scripts/build-images.sh
