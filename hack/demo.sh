#!/usr/bin/env bash
# The README's "run it" demo: a local control plane, the CRDs, the operator and the
# samples; then a second version and a rollback. Everything it starts is stopped at
# the end unless KEEP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH"
export ALECTON_LOCAL_DIR="${ALECTON_LOCAL_DIR:-$ROOT/.local/demo}"
KUBECONFIG="$ALECTON_LOCAL_DIR/kubeconfig"
export KUBECONFIG
OPERATOR_LOG="$ROOT/.local/demo-operator.log"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
operator_pid=""
cleanup() {
  if [ -n "$operator_pid" ]; then kill "$operator_pid" 2>/dev/null || true; wait "$operator_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "KEEP=1: the control plane is still running. export KUBECONFIG=$KUBECONFIG; stop it with: ALECTON_LOCAL_DIR=$ALECTON_LOCAL_DIR alecton local down"
  else
    alecton local down >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

wait_phase() { # phase
  kubectl wait deployments.alecton.dev/web-staging --for=jsonpath='{.status.phase}'="$1" --timeout=60s >/dev/null
}

step "Starting the local control plane (etcd; clusters alecton-a and alecton-b with 2 kwok nodes each)"
mkdir -p "$ROOT/.local"
alecton local up

step "Installing the CRDs into alecton-a"
kubectl apply -k crds/
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
until kubectl get alecton >/dev/null 2>&1; do sleep 0.2; done

step "Onboarding namespace web-staging of alecton-b (the ServiceAccount the grant acts as there)"
alecton onboard web-staging --tenant default | kubectl --context alecton-b apply -f -

step "Starting the operator (log: $OPERATOR_LOG)"
alecton operator run --context alecton-a --helm "$ROOT/.tools/bin/helm" --charts-dir charts \
  --allow-context '*=alecton-b:web-*' >"$OPERATOR_LOG" 2>&1 &
operator_pid=$!

step "Applying the samples: a Cluster, an Application, an Image and a Deployment"
kubectl apply -f deploy/samples/
wait_phase Deployed
kubectl get alecton
step "The helm release, as helm sees it in alecton-b"
helm list --kube-context alecton-b -n web-staging

step "CI records version 1.1.0 and deploys it"
kubectl apply -f - <<'YAML'
apiVersion: alecton.dev/v1alpha1
kind: Image
metadata:
  name: web-1.1.0
spec:
  name: web
  version: "1.1.0"
  image: ghcr.io/stefanprodan/podinfo:6.8.0
YAML
kubectl patch deployments.alecton.dev web-staging --type merge -p '{"spec":{"version":"1.1.0"}}'
until [ "$(kubectl get deployments.alecton.dev web-staging -o jsonpath='{.status.release.revision}')" = 2 ]; do sleep 0.2; done
wait_phase Deployed
kubectl get deployments.alecton.dev

step "Rolling back to revision 1"
kubectl patch deployments.alecton.dev web-staging --type merge -p '{"spec":{"rollback":{"revision":1}}}'
wait_phase RolledBack
kubectl get deployments.alecton.dev -o wide
helm history web-staging --kube-context alecton-b -n web-staging
echo
echo "Image now running in alecton-b: $(kubectl --context alecton-b -n web-staging get deployment web-staging -o jsonpath='{.spec.template.spec.containers[0].image}')"

step "A bad build: 1.2.0 crashes on start; with onFailure: Rollback it rolls back by itself"
kubectl patch applications.alecton.dev web --type merge -p '{"spec":{"onFailure":"Rollback"}}'
kubectl apply -f - <<'YAML'
apiVersion: alecton.dev/v1alpha1
kind: Image
metadata:
  name: web-1.2.0
spec:
  name: web
  version: "1.2.0"
  image: ghcr.io/stefanprodan/podinfo:6.9.0-crash   # kwok makes a -crash image crash
YAML
# --wait follows Deploying -> Verifying and exits non-zero: the version failed its health check.
if alecton deploy web staging 1.2.0 --wait --timeout 120; then
  echo "unexpected: the crashing version was reported healthy" >&2; exit 1
fi
kubectl get deployments.alecton.dev
echo
echo "Message: $(kubectl get deployments.alecton.dev web-staging -o jsonpath='{.status.message}')"
echo "Failed versions: $(kubectl get deployments.alecton.dev web-staging -o jsonpath='{.status.failedVersions[*].version}')"
alecton releases web staging
echo
echo "Image now running in alecton-b: $(kubectl --context alecton-b -n web-staging get deployment web-staging -o jsonpath='{.spec.template.spec.containers[0].image}')"
