# The README's commands. `make test` is also what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
KIND_CLUSTER ?= collectionflow

.PHONY: help setup system-deps k8s-binaries cli-docs crd image test test-unit lint fmt demo cluster kind-up kind-down bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed system-deps ## create the venv and install what the tests need

system-deps: ## PostgreSQL, kubectl and etcd from the distribution (Debian/Ubuntu)
	bash scripts/install-system-deps.sh

k8s-binaries: ## build or fetch kube-apiserver, kube-controller-manager and etcd (cached)
	@if [ -z "$$KUBECONFIG" ]; then bash scripts/provision-k8s.sh >/dev/null; fi

cli-docs: $(BIN)/.installed ## regenerate docs/cli.md and the chart's README from the code
	$(BIN)/typer collectionflow.cli utils docs --name collectionflow --title "The collectionflow command" --output docs/cli.md
	$(BIN)/python scripts/chart_readme.py

crd: $(BIN)/.installed ## regenerate the CRD from the API models, in crds/ and in the chart
	$(BIN)/collectionflow crd > crds/collectionflow.yaml
	cp crds/collectionflow.yaml charts/collectionflow-operator/files/collectionflow.yaml

image: $(BIN)/.installed ## the operator image from the Dockerfile (docker, or buildah over debootstrap)
	PYTHON=$(BIN)/python bash scripts/build-image.sh

lint: $(BIN)/.installed ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup k8s-binaries image lint ## everything: unit, db, cluster and e2e tests (KUBECONFIG=... uses that cluster)
	$(BIN)/pytest -m "unit or chart or db or cluster or e2e" $(PYTEST_ARGS)

test-unit: $(BIN)/.installed ## the fast inner loop: pure logic only
	$(BIN)/pytest -m unit -q $(PYTEST_ARGS)

fmt: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

cluster: setup k8s-binaries image ## start the local control plane and node agent, print KUBECONFIG, block
	$(BIN)/python -m harness up

demo: setup k8s-binaries image ## a local cluster, the operator, the sample flows live to Succeeded
	$(BIN)/python scripts/demo.py

kind-up: ## for machines with Docker: a kind cluster with our image loaded
	kind create cluster --name $(KIND_CLUSTER)
	IMAGE_BUILDER=docker $(MAKE) image
	kind load docker-image collectionflow-operator:0.1.0 --name $(KIND_CLUSTER)
	@echo "now: KUBECONFIG=\$$HOME/.kube/config make test"

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

bench: setup k8s-binaries ## benchmarks; they print tables and write bench/results/*.json
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
