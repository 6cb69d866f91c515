# The commands the README shows. `make run` and `make test` work on a fresh machine.
.DEFAULT_GOAL := help
CARGO ?= cargo
BUF ?= buf
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help run test lint fmt bench bench-lookup bench-routing bench-ticketing bench-sms seed chart image check-duplicates infra openapi proto proto-release

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# A first run on one machine: webhooks may go to receivers on this machine over
# http (production refuses both; docs/operators/configuration.md).
run: export HOTLINE_TICKETING__WEBHOOKS__ALLOW_HTTP ?= true
run: export HOTLINE_TICKETING__WEBHOOKS__ALLOW_NETWORKS ?= ["127.0.0.0/8"]
run: ## build and start every service on embedded storage (SQLite, in-process bus, in-memory cache)
	$(CARGO) run --quiet -p hotline -- serve

infra: ## start PostgreSQL 15, Redis 7 and RabbitMQ 3 (compose.yaml) at the addresses the suites and benchmarks use
	docker compose up -d --wait

test: ## all tests; real PostgreSQL/RabbitMQ/Redis suites run when reachable (HOTLINE_REQUIRE_INFRA=1: must be)
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif

openapi: ## regenerate docs/api/openapi.json from the code (a test fails while the two differ)
	HOTLINE_TEST_BLESS_OPENAPI=1 $(CARGO) test --workspace --test contract the_served_document

proto: ## buf lint and buf breaking against the last release's contracts (buf: pip install -r tests/requirements.txt)
	cd proto && $(BUF) lint && $(BUF) breaking --against release.binpb

proto-release: ## record the .proto contracts as the release's: the baseline buf breaking compares with
	cd proto && $(BUF) build --exclude-source-info -o release.binpb

lint: ## formatting, clippy with warnings as errors, one version of each major crate
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	./.ci/check-duplicates

fmt: ## format the code
	$(CARGO) fmt --all

# `make seed` loads identity's PostgreSQL schema; override any of these.
seed: export HOTLINE_DATABASE__URL ?= postgres://postgres@127.0.0.1:5432/test
seed: export HOTLINE_DATABASE__SCHEMA_PREFIX ?= bench_
seed: export HOTLINE_CACHE__KIND ?= redis
seed: export HOTLINE_CACHE__REDIS_URL ?= redis://127.0.0.1:6379
seed: export HOTLINE_CACHE__PREFIX ?= hotline-bench
seed: export HOTLINE_IDENTITY__PII_KEY ?= YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=
seed: export HOTLINE_BOOTSTRAP_CLIENT_ID ?= bench-admin
seed: export HOTLINE_BOOTSTRAP_CLIENT_SECRET ?= bench-admin-secret-0123456789
seed: export HOTLINE_TELEMETRY__LEVEL ?= warn

seed: ## load 1,000,000 customers into PostgreSQL (HOTLINE_BENCH_CUSTOMERS to change)
	$(CARGO) run --release -p hotline-system-tests --bin seed

bench: bench-lookup bench-routing bench-ticketing bench-sms ## the benchmarks below

bench-lookup: ## screen pops from a separate process, PostgreSQL + Redis and embedded, 4 and 16 connections, beside redis-benchmark GET
	$(CARGO) build --release -p hotline --bin hotline
	$(CARGO) run --release -p hotline-system-tests --bin lookup-bench

bench-ticketing: ## work orders opened and dispatched per second, p50, p99, texts and webhooks drained, beside pgbench
	$(CARGO) build --release -p hotline --bin hotline
	$(CARGO) run --release -p hotline-system-tests --bin ticketing-bench

bench-sms: ## texts/s over SMPP to a stand-in SMSC answering at once and after 50 ms, beside Jasmin's figures and pgbench
	$(CARGO) build --release -p hotline --bin hotline
	$(CARGO) run --release -p hotline-system-tests --bin sms-bench

bench-routing: ## routing assignments/s, p50, p99: embedded, 1 and 3 replicas on PostgreSQL + Redis + RabbitMQ, beside pgbench
	$(CARGO) build --release -p hotline --bin hotline
	$(CARGO) run --release -p hotline-system-tests --bin routing-bench

# The chart's checks run in their own virtual environment (Debian refuses system-wide
# pip installs), reinstalled only when requirements.txt changes. Needs python3-venv.
# checkov then scans the manifests of the two CI values files; it must find nothing
# (the chart's deliberate exceptions carry checkov.io/skip annotations with reasons).
chart: CHART_VENV ?= $(or $(TMPDIR),/tmp)/hotline-chart-venv
chart: CHART_MANIFESTS ?= $(or $(TMPDIR),/tmp)/hotline-chart-manifests
chart: ## render, lint, validate and checkov-scan the Helm chart offline (own virtual environment)
	@test -x $(CHART_VENV)/bin/pip || python3 -m venv $(CHART_VENV) || { \
	  echo "python3 -m venv failed; on Debian/Ubuntu: apt-get install -y python3-venv" >&2; exit 1; }
	@cmp -s charts/hotline/ci/requirements.txt $(CHART_VENV)/requirements.txt || { \
	  $(CHART_VENV)/bin/pip install -q --disable-pip-version-check -r charts/hotline/ci/requirements.txt \
	  && cp charts/hotline/ci/requirements.txt $(CHART_VENV)/requirements.txt; }
	$(CHART_VENV)/bin/python charts/hotline/ci/check.py --manifests $(CHART_MANIFESTS)
	$(CHART_VENV)/bin/checkov --framework kubernetes --skip-download --quiet --compact -d $(CHART_MANIFESTS)

image: ## build the container image (needs a Docker engine)
	docker build -f docker/Dockerfile --build-arg GIT_REVISION=$$(git rev-parse --short=12 HEAD 2>/dev/null) -t hotline:dev .
