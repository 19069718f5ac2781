# The two commands of the README: `make up` (a local cluster with the sample app) and `make test`.
# Everything else is a step of theirs, usable on its own.
SHELL := /bin/bash
STACK ?=
PY := .venv/bin/python
PULUMI_ENV := source scripts/pulumi-env.sh &&

.PHONY: up destroy context test unit venv engine images toolchain k8s-toolchain bench status drills harness-up harness-down vm-deps help

up:            ## venv, engine, toolchain, images when air-gapped, then `pulumi up` (STACK=local|local-airgap|...)
	STACK=$(STACK) scripts/up.sh

destroy:       ## remove everything the stack made (the stack `make up` chose, or STACK=), and its docker context
	@stack=$$(scripts/stack.sh destroy) && $(PULUMI_ENV) pulumi destroy --yes --stack "$$stack" && \
	scripts/context.sh remove "$$stack"

context:       ## a docker context named after the stack, on its first manager: `docker --context STACK service ls`
	@stack=$$(scripts/stack.sh context) && scripts/context.sh create "$$stack"

test:          ## all tests this machine allows, with their set-up (what CI runs)
	scripts/test.sh

unit: venv     ## the unit tests only (mocks, no Docker, seconds)
	$(PY) -m pytest tests/unit -q

venv:
	scripts/venv.sh

engine:        ## install and start a Docker engine when none answers (root)
	scripts/engine.sh

images:        ## build the air-gapped node, base, registry and app images from Debian packages
	images/build.sh all

toolchain:     ## build the Pulumi CLI and plugins from the Go module proxy (docs/airgap.md)
	bash scripts/toolchain.sh

k8s-toolchain: ## build Kubernetes, etcd and the cluster images from the Go module proxy and Debian (docs/airgap.md)
	bash scripts/k8s-toolchain.sh

vm-deps:       ## QEMU, debootstrap and ssh for the VM tests
	bash scripts/vm-deps.sh

bench: venv images   ## time to ready and recovery times, against the bare-docker baseline (BENCH_ARGS=--kubeadm-only: kubeadm 1+2 alone)
	$(PY) -m pip install -q -r requirements-bench.txt && $(PY) scripts/bench.py $(BENCH_ARGS)

drills: venv images  ## the fault drills against the stack `make up` chose (or STACK=), else a harness cluster
	@stack=$$(scripts/stack.sh drills 2>/dev/null || true); \
	if [ -n "$$stack" ]; then echo "drills: stack $$stack"; else echo "drills: no stack chosen: on a harness cluster of their own"; fi; \
	$(PULUMI_ENV) PHOENIX_DRILL_STACK=$$stack $(PY) -m pytest tests/drills -m engine -s

status: venv   ## nodes, services and the last phoenix action of the stack `make up` chose (or STACK=)
	@stack=$$(scripts/stack.sh status) && $(PULUMI_ENV) $(PY) scripts/status.py "$$stack"

harness-up: venv images   ## a local Swarm through the project's bootstrap, without the Pulumi engine
	$(PY) -m tests.integration.local_swarm up --stack harness

harness-down:
	$(PY) -m tests.integration.local_swarm down --stack harness

help:
	@grep -E '^[a-z-]+:.*##' Makefile | sed 's/:.*##/\t/'
