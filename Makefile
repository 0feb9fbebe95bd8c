# The two commands a new user needs:  `make demo`  and  `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps up down run demo test lint crd clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## deps: Python packages in .venv, the control-plane binaries and promtool (built once, cached)
deps: $(STAMP)
	@tests/platform/build-control-plane.sh >/dev/null
	@tests/platform/build-promtool.sh >/dev/null

## up / down: the local platform (MariaDB, moto + simulator, etcd + kube-apiserver)
up: deps
	$(PY) -m tests.platform up

down:
	@if [ -x $(PY) ]; then $(PY) -m tests.platform down; fi

## run: the operator in the foreground against the local platform, as its own service account
run: up
	$(PY) -m tests.platform crd
	set -a; source .local/env; set +a; WPENV_LOG_FORMAT=$${WPENV_LOG_FORMAT:-plain} \
	  KUBECONFIG=$$($(PY) -m tests.platform operator-kubeconfig) exec $(PY) -m wpenv.operator

## demo: platform up, operator running, the sample applied, `kubectl get wpenv -o wide`
demo: up
	$(PY) -m tests.platform demo

## test: lint, types, CRD in sync, unit and end-to-end tests (starts its own platform)
test: deps lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## crd: regenerate crds/ and the install settings (manifests/base/settings.env) from the models
crd: $(STAMP)
	$(PY) -m wpenv.api.crd
	$(PY) -m wpenv.manifests

clean: down
	rm -rf .local
