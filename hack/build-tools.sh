#!/usr/bin/env bash
# Builds the pinned toolchain (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, helm, helm3, kwok, the OCI registry, cosign, prometheus, Flux's helm-controller,
# source-controller and kustomize-controller) and our helmd (hack/helmd) from Go
# modules into a per-version cache outside the clone, then links the binaries into
# .tools/bin/. A tool already in the cache is not rebuilt, so a warm run takes seconds.
#
#   hack/build-tools.sh            build what is missing and link everything
#   TOOLS="helm etcd" hack/...     only these tools
set -euo pipefail

KUBE_VERSION=v1.37.2      # k8s.io/kubernetes; its staging modules are v0.37.2
ETCD_VERSION=v3.7.3       # go.etcd.io/etcd/server/v3
HELM_VERSION=v4.3.1       # helm.sh/helm/v4
HELM3_VERSION=v3.22.0     # helm.sh/helm/v3
KWOK_VERSION=v0.8.0       # sigs.k8s.io/kwok (simulated nodes)
PROMETHEUS_VERSION=v0.316.0  # github.com/prometheus/prometheus (the DORA metrics test; Prometheus 3.x)
REGISTRY_VERSION=v3.0.0   # github.com/distribution/distribution/v3: the OCI registry of `alecton local up`
COSIGN_VERSION=v2.6.1     # github.com/sigstore/cosign/v2: signs test images (the operator verifies without it)
# Flux v2.9, the release of Flux's own published helm-controller benchmark: `make bench`
# runs the same waves through these two controllers in the same run as alecton.
FLUX_HELM_CONTROLLER_VERSION=v1.6.3    # github.com/fluxcd/helm-controller
FLUX_SOURCE_CONTROLLER_VERSION=v1.9.0  # github.com/fluxcd/source-controller
# The GitOps client of tests/integration/test_flux_gitops.py (Flux v2.9 too).
FLUX_KUSTOMIZE_CONTROLLER_VERSION=v1.9.0  # github.com/fluxcd/kustomize-controller

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${ALECTON_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alecton/tools}"
BIN="$ROOT/.tools/bin"
TOOLS="${TOOLS:-kube-apiserver kube-controller-manager kube-scheduler kubectl etcd helm helm3 helmd kwok registry cosign prometheus flux-helm-controller flux-source-controller flux-kustomize-controller}"
# The commands the wrapper module imports; changing the list rebuilds the wrapper.
KUBE_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubectl"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0

mkdir -p "$CACHE" "$BIN"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# A wrapper module for k8s.io/kubernetes: the upstream go.mod replaces its staging
# modules with ./staging paths, which do not exist in the module zip, so we replace
# each one with its published v0.x release instead. The list is read from the real
# go.mod so it cannot drift from the pinned version.
kube_wrapper() {
  local dir="$CACHE/src/kubernetes-$KUBE_VERSION"
  if [ "$(cat "$dir/.ready" 2>/dev/null)" = "$KUBE_COMMANDS" ]; then echo "$dir"; return; fi
  rm -rf "$dir"; mkdir -p "$dir"
  local gomod staging
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  staging="v0.${KUBE_VERSION#v1.}"
  {
    echo "module alecton.dev/tools/kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" |
      while read -r mod; do echo "	$mod => $mod $staging"; done
    echo ")"
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in $KUBE_COMMANDS; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } >"$dir/tools.go"
  (cd "$dir" && go mod tidy >&2)
  echo "$KUBE_COMMANDS" >"$dir/.ready"
  echo "$dir"
}

kube_ldflags() {
  local pkg minor
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitCommit=alecton-modbuild -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_kube() { # name
  local name="$1" out="$CACHE/$1-$KUBE_VERSION" dir
  dir="$(kube_wrapper)"
  (cd "$dir" && go build -ldflags "$(kube_ldflags)" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION" dir="$CACHE/src/etcd-$ETCD_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    local gomod
    gomod="$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    {
      echo "module alecton.dev/tools/etcd"
      echo
      echo "go 1.26"
      echo
      echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
      echo
      echo "replace ("
      # etcd's sibling modules are replaced with ../ paths upstream; use their releases.
      sed -n 's#^[[:space:]]*\(go.etcd.io/etcd/[a-z0-9/]*\) => \.\./.*#\1#p' "$gomod" |
        while read -r mod; do echo "	$mod => $mod $ETCD_VERSION"; done
      echo ")"
    } >"$dir/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
    (cd "$dir" && go mod tidy >&2)
    touch "$dir/.ready"
  fi
  (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3)
  mv "$out.tmp" "$out"
}

build_helm() { # major version
  local major="$1" version out
  if [ "$major" = 4 ]; then version=$HELM_VERSION; out="$CACHE/helm-$version"
  else version=$HELM3_VERSION; out="$CACHE/helm3-$version"; fi
  local gobin
  gobin="$(mktemp -d)"
  GOBIN="$gobin" go install \
    -ldflags "-s -w -X helm.sh/helm/v$major/internal/version.version=$version -X helm.sh/helm/v$major/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v$major/cmd/helm@$version"
  mv "$gobin/helm" "$out"
  rm -rf "$gobin"
}

# `go install PACKAGE@VERSION` into the cache as OUT: for modules whose go.mod has no
# replace directives (no wrapper module needed). $3: extra -ldflags (version stamps).
go_install() { # out package@version [ldflags]
  local out="$1" package="$2" gobin
  gobin="$(mktemp -d)"
  GOBIN="$gobin" go install -ldflags "-s -w ${3:-}" "$package"
  mv "$gobin/$(basename "${package%@*}")" "$out"
  rm -rf "$gobin"
}

build_kwok() {
  go_install "$CACHE/kwok-$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# Prometheus's go.mod has no replace directives, so `go install` builds it. Without the
# `builtinassets` tag no web UI is embedded (its assets come from an npm build); the HTTP
# API, which is all the tests query, is served either way.
build_prometheus() {
  go_install "$CACHE/prometheus-$PROMETHEUS_VERSION" \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
    "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}"
}

# The reference OCI registry (charts and images of the local test bed); its go.mod has no
# replace directives. Cold build here: about a minute.
build_registry() {
  go_install "$CACHE/registry-$REGISTRY_VERSION" \
    "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" \
    "-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
}

# cosign signs the images the signature tests push (key pairs, --tlog-upload=false); the
# operator itself verifies signatures in Python and never runs it. Its go.mod has no
# replace directives, so `go install` builds it. Cold build here: about 6.5 minutes
# (385 s with module downloads, niced, next to another build on 2 cores).
build_cosign() {
  go_install "$CACHE/cosign-$COSIGN_VERSION" "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION" \
    "-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION"
}

# Flux's controllers are main packages at their module roots; one wrapper module holds
# both so their shared dependencies resolve once (Flux pins them compatibly). Their CRDs
# are copied next to the binaries (the bench installs them on the management cluster).
flux_wrapper() {
  local dir="$CACHE/src/flux-$FLUX_HELM_CONTROLLER_VERSION-$FLUX_SOURCE_CONTROLLER_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'module alecton.dev/tools/flux\n\ngo 1.26\n' >"$dir/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/fluxcd/helm-controller"\n\t_ "github.com/fluxcd/source-controller"\n)\n' >"$dir/tools.go"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go get \
      "github.com/fluxcd/helm-controller@$FLUX_HELM_CONTROLLER_VERSION" \
      "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION" >&2)
    touch "$dir/.ready"
  fi
  echo "$dir"
}

# kustomize-controller has a wrapper module of its own, keyed by its version, so adding it
# left the helm-/source-controller wrapper (and the binaries cached from it) untouched.
# Its go.mod replaces modules with other releases (go-digest with a BLAKE3-capable commit,
# kustomize's api/kyaml); replace directives only apply in the main module, so the wrapper
# repeats those, read from the real go.mod (its ./api path replace is left out: the
# published api module is the same code).
flux_kustomize_wrapper() {
  local dir="$CACHE/src/flux-kustomize-controller-$FLUX_KUSTOMIZE_CONTROLLER_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    local gomod
    gomod="$(go mod download -json "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION" |
      sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    {
      printf 'module alecton.dev/tools/fluxkustomize\n\ngo 1.26\n\nreplace (\n'
      sed -n 's#^\(replace\)\{0,1\}[[:space:]]*\([^ (]*\) => \([^ .][^ ]*\) \(v[^ ]*\)$#\t\2 => \3 \4#p' "$gomod"
      printf ')\n'
    } >"$dir/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/fluxcd/kustomize-controller"\n' >"$dir/tools.go"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go get \
      "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION" >&2)
    touch "$dir/.ready"
  fi
  echo "$dir"
}

build_flux() { # helm-controller | source-controller | kustomize-controller
  local name="$1" version dir out crds
  case "$name" in
    helm-controller) version=$FLUX_HELM_CONTROLLER_VERSION; dir="$(flux_wrapper)" ;;
    source-controller) version=$FLUX_SOURCE_CONTROLLER_VERSION; dir="$(flux_wrapper)" ;;
    kustomize-controller) version=$FLUX_KUSTOMIZE_CONTROLLER_VERSION; dir="$(flux_kustomize_wrapper)" ;;
  esac
  out="$CACHE/flux-$name-$version"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "-s -w" -o "$out.tmp" "github.com/fluxcd/$name")
  crds="$CACHE/flux-crds-$name-$version"
  rm -rf "$crds"; mkdir -p "$crds"
  cp "$(cd "$dir" && go list -m -f '{{.Dir}}' "github.com/fluxcd/$name")"/config/crd/bases/*.yaml "$crds/"
  chmod u+w "$crds"/*.yaml
  mv "$out.tmp" "$out"
}

# helmd is our code on the Helm SDK: keyed by the helm version AND a hash of its sources,
# so any change to hack/helmd rebuilds it.
build_helmd() {
  local out="$CACHE/helmd-$(version_of helmd)"
  grep -q "helm.sh/helm/v4 $HELM_VERSION\$" "$ROOT/hack/helmd/go.mod" ||
    { echo "hack/helmd/go.mod must require helm.sh/helm/v4 $HELM_VERSION" >&2; exit 2; }
  (cd "$ROOT/hack/helmd" && go build -ldflags "-s -w -X main.userAgent=Helm/${HELM_VERSION#v}" -o "$out.tmp" .)
  mv "$out.tmp" "$out"
}

helmd_hash() {
  (cd "$ROOT/hack/helmd" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) ! -name '*_test.go' |
    LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
}

version_of() {
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) echo "$KUBE_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    helm3) echo "$HELM3_VERSION" ;;
    helmd) echo "$HELM_VERSION-$(helmd_hash)" ;;
    prometheus) echo "$PROMETHEUS_VERSION" ;;
    registry) echo "$REGISTRY_VERSION" ;;
    cosign) echo "$COSIGN_VERSION" ;;
    flux-helm-controller) echo "$FLUX_HELM_CONTROLLER_VERSION" ;;
    flux-source-controller) echo "$FLUX_SOURCE_CONTROLLER_VERSION" ;;
    flux-kustomize-controller) echo "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" ;;
    *) echo "unknown tool $1" >&2; exit 2 ;;
  esac
}

for tool in $TOOLS; do
  version="$(version_of "$tool")"
  cached="$CACHE/$tool-$version"
  if [ -x "$cached" ]; then
    log "$tool $version: cached"
  else
    log "$tool $version: building (cold builds take minutes; kube-apiserver the longest)"
    start=$SECONDS
    case "$tool" in
      kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) build_kube "$tool" ;;
      kwok) build_kwok ;;
      etcd) build_etcd ;;
      helm) build_helm 4 ;;
      helm3) build_helm 3 ;;
      helmd) build_helmd ;;
      prometheus) build_prometheus ;;
      registry) build_registry ;;
      cosign) build_cosign ;;
      flux-helm-controller) build_flux helm-controller ;;
      flux-source-controller) build_flux source-controller ;;
      flux-kustomize-controller) build_flux kustomize-controller ;;
    esac
    log "$tool $version: built in $((SECONDS - start)) s"
  fi
  ln -sf "$cached" "$BIN/$tool"
  case "$tool" in flux-*) ln -sfn "$CACHE/flux-crds-${tool#flux-}-$version" "$ROOT/.tools/$tool-crds" ;; esac
done
log "ready in $BIN"
