#!/usr/bin/env bash
# `make test-external`: the e2e subset against two clusters the suite did not start.
#
# Proves the switch of tests/integration/external.py without Docker: `alecton local up`
# plays two kind clusters. Its kubeconfig is copied with kind's names (contexts, clusters
# and users kind-mgmt and kind-target), and the README's "With kind" test command (the
# kind-tests block, minus its `kind create` line) runs as written, with only the
# kubeconfig path replaced. The plane is torn down on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/operator${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code

work=$(mktemp -d)
export ALECTON_LOCAL_DIR="$work/plane"
cleanup() {
  "$PYTHON" -m alecton local down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

block=$(sed -n '/<!-- kind-tests:start -->/,/<!-- kind-tests:end -->/p' README.md | sed '/^<!--/d;/^```/d')
[[ -n "$block" ]] || { echo "README.md lost its kind-tests block" >&2; exit 1; }
command=$(grep -v '^kind ' <<<"$block")

"$PYTHON" -m alecton local up
"$PYTHON" - "$ALECTON_LOCAL_DIR/kubeconfig" "$work/kind-kubeconfig" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
names = {"alecton-a": "kind-mgmt", "alecton-b": "kind-target"}
for entry in config["clusters"] + config["contexts"]:
    entry["name"] = names[entry["name"]]
for context in config["contexts"]:
    context["context"]["cluster"] = names[context["context"]["cluster"]]
    context["context"]["user"] = context["name"]  # one user per context, as kind writes them
(admin,) = config["users"]
config["users"] = [{"name": name, "user": admin["user"]} for name in names.values()]
config["current-context"] = "kind-mgmt"
with open(sys.argv[2], "w") as out:
    yaml.safe_dump(config, out)
PY
chmod 600 "$work/kind-kubeconfig"

command=${command//'~/.kube/config'/$work/kind-kubeconfig}
command=${command//python3 /$PYTHON }
echo "» $command $*" >&2
started=$(date +%s)
status=0
bash -c "set -euo pipefail; $command \"\$@\"" bash "$@" || status=$?
echo "» e2e subset on the external pair: exit $status after $(( $(date +%s) - started )) s" >&2
exit $status
