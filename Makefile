# alecton: common tasks. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help tools install lint test test-unit test-integration test-external demo clean bench bench-quick chart-crds argocd-health

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

tools: ## Build kube-apiserver, -controller-manager, -scheduler, kubectl, etcd, helm (v4), helm3, kwok, the OCI registry, cosign (tests), prometheus, Flux helm-, source- and kustomize-controller (cached)
	@bash hack/build-tools.sh

install: ## Install alecton and its test dependencies (pip, editable)
	@$(PYTHON) -c 'import alecton, pytest, ruff, hypothesis, fastapi, uvicorn, sse_starlette, httpx, playwright, importlinter, lupa, bcrypt' 2>/dev/null && command -v hadolint >/dev/null \
	  || $(PYTHON) -m pip install -q -e '.[test]'

lint: install ## ruff check, ruff format --check, the layer contracts (lint-imports), hadolint, helmd's gofmt/vet/tests
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	lint-imports
	hadolint Dockerfile
	cd hack/helmd && test -z "$$(gofmt -l .)" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" go vet ./... \
	  && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" go test ./...

test-unit: install ## Unit tests only (no cluster, seconds)
	$(PYTHON) -m pytest tests/unit -q

test-integration: install tools ## Integration tests on the real local control plane
	$(PYTHON) -m pytest tests/integration -q

test-external: install tools ## The e2e subset on `alecton local up` used as two external clusters (README "With kind")
	PYTHON=$(PYTHON) hack/test-external.sh

test: install tools lint ## Everything: installs what is missing, lints, runs the whole suite
	$(PYTHON) -m pytest tests -q

demo: install tools ## Deploy, upgrade and roll back the samples on a local control plane (KEEP=1 keeps it)
	@bash hack/demo.sh

# crds/ is the source; the chart carries copies, not symlinks: a symlink costs an INFO line
# on every helm run and dangles when the chart directory is copied on its own.
# tests/unit/test_chart_package.py fails when the copies are stale.
chart-crds: ## Copy crds/*.alecton.dev.yaml into deploy/chart/crds/ (run after changing a CRD)
	rm -f deploy/chart/crds/*.yaml
	cp crds/*.alecton.dev.yaml deploy/chart/crds/

argocd-health: ## Write deploy/argocd/argocd-cm-patch.yaml from deploy/argocd/health/*.lua (run after changing a script)
	$(PYTHON) hack/argocd-cm-patch.py

clean: ## Remove the project-local tool links and caches (the Go build cache stays)
	rm -rf .tools .pytest_cache .ruff_cache .local

bench: install tools ## Benchmarks on a local control plane; rewrites docs/benchmarks.md (~10 min)
	$(PYTHON) bench/run.py

bench-quick: install tools ## A small smoke version of the benchmarks
	@mkdir -p test-artifacts
	$(PYTHON) bench/run.py --quick --output test-artifacts/bench-quick.json
