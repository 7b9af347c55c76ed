#!/usr/bin/env bash
# Builds the end-to-end toolchain from Go modules: the Pulumi CLI, the
# pulumi-kubernetes provider, etcd, kube-apiserver, kube-controller-manager,
# and collects the KServe and Prometheus Operator CRDs. Only the `go` command
# and the Go module proxy are used; nothing is downloaded from anywhere else.
#
# Usage: toolchain/build.sh [--check | --print-dir | --relock] [COMPONENT...]
#   (no option)   build what is missing, then print the toolchain directory
#   --check       exit 0 when everything is built, 1 (listing what is not) otherwise
#   --print-dir   print the toolchain directory and exit
#   --relock      rewrite toolchain/modules/*/go.{mod,sum} with `go mod tidy`
#                 (after editing a pin in a go.mod), then build
#   COMPONENT     only these (pulumi pulumi-kubernetes etcd kubernetes crds)
#
# Idempotent: each component is built once per recipe (its pinned version and
# the hash of its go.mod and go.sum) and skipped afterwards. Builds run under
# `nice` (TOOLCHAIN_NICE, default 10): the machines are shared.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/mlops-infra/toolchain
root=${MLOPS_INFRA_TOOLCHAIN_DIR:-$cache_root/$TOOLCHAIN_VERSION}
bin=$root/bin
plugins=$root/plugins
crds=$root/crds
stamps=$root/stamps
nice_level=${TOOLCHAIN_NICE:-10}

all_components=(pulumi pulumi-kubernetes etcd kubernetes crds)
mode=build
components=()
for arg in "$@"; do
  case $arg in
    --check) mode=check ;;
    --print-dir) echo "$root"; exit 0 ;;
    --relock) mode=relock ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    pulumi|pulumi-kubernetes|etcd|kubernetes|crds) components+=("$arg") ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#components[@]} -gt 0 ] || components=("${all_components[@]}")

log() { printf '[toolchain] %s\n' "$*" >&2; }

# The recipe of a component: what its build depends on. A different recipe
# means a rebuild; the same recipe means the component is skipped.
recipe() {
  local name=$1 mod=$here/modules/$1
  case $name in
    pulumi) echo "pulumi=$PULUMI_VERSION" ;;
    pulumi-kubernetes) echo "pulumi-kubernetes=$PULUMI_KUBERNETES_VERSION module=$PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION" ;;
    etcd) echo "etcd=$ETCD_VERSION" ;;
    kubernetes) echo "kubernetes=$KUBERNETES_VERSION" ;;
    crds) echo "kserve=$KSERVE_VERSION prometheus-operator=$PROMETHEUS_OPERATOR_VERSION" ;;
  esac
  if [ -d "$mod" ]; then
    cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16
  fi
}

is_built() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$(recipe "$1")" ]; }

if [ "$mode" = check ]; then
  missing=()
  for c in "${components[@]}"; do is_built "$c" || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "toolchain in $root is missing: ${missing[*]} (run toolchain/build.sh)" >&2
    exit 1
  fi
  exit 0
fi

command -v go >/dev/null || { echo "the go command is not on PATH (Go >= 1.26.6 is needed)" >&2; exit 3; }
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "$go_minor" -lt 26 ]; then
  echo "Go $(go env GOVERSION) is too old: pulumi pkg/v3 v$PULUMI_VERSION needs Go >= 1.26.6" >&2
  exit 3
fi

# Never switch Go toolchains behind the user's back; keep the module graph as
# locked unless relocking.
export GOTOOLCHAIN=local
if [ "$mode" = relock ]; then export GOFLAGS="-mod=mod -buildvcs=false"; else export GOFLAGS="-mod=readonly -buildvcs=false"; fi

mkdir -p "$bin" "$plugins" "$crds" "$stamps" "$root/src"

# Copies a component's locked module into a scratch directory under the cache.
scratch_module() {
  local name=$1 dir=$root/src/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$here/modules/$name/go.mod" "$here/modules/$name/go.sum" "$dir/"
  echo "$dir"
}

# After --relock, the tidied go.mod and go.sum go back into the repository.
save_lock() {
  local name=$1 dir=$2
  if [ "$mode" = relock ]; then
    (cd "$dir" && go mod tidy)
    cp "$dir/go.mod" "$dir/go.sum" "$here/modules/$name/"
  fi
}

# The version a locked go.mod selects for a module (the pins must agree).
require_pin() {
  local dir=$1 module=$2 want=$3 got
  got=$(cd "$dir" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$module")
  if [ "$got" != "$want" ]; then
    echo "toolchain/modules/$(basename "$dir")/go.mod selects $module $got, versions.env pins $want" >&2
    exit 1
  fi
}

gobuild() { nice -n "$nice_level" go build -trimpath "$@"; }

build_pulumi() {
  local dir sdk
  dir=$(scratch_module pulumi)
  save_lock pulumi "$dir"
  require_pin "$dir" github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION"
  require_pin "$dir" github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_VERSION"
  # The Python SDK refuses a CLI that reports an empty version.
  (cd "$dir" && gobuild -o "$bin/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  # Dynamic providers (pulumi.dynamic) run through this shell shim, which the
  # engine looks for beside the CLI; it ships in the sdk module.
  sdk=$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$bin/pulumi-resource-pulumi-python"
}

build_pulumi_kubernetes() {
  local dir module=github.com/pulumi/pulumi-kubernetes/provider/v4 src cmd plugin
  dir=$(scratch_module pulumi-kubernetes)
  require_pin "$dir" "$module" "$PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"
  require_pin "$dir" github.com/pulumi/pulumi-kubernetes/sdk/v4 "v$PULUMI_KUBERNETES_VERSION"
  (cd "$dir" && go mod download "$module")
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' "$module")
  # The main package embeds schema-embed.json and terraform-mapping-embed.json,
  # which are git-ignored upstream: copy the package out of the read-only
  # module cache and generate them with its own generate.go.
  cmd=$dir/cmd/pulumi-resource-kubernetes
  mkdir -p "$cmd"
  cp "$src"/cmd/pulumi-resource-kubernetes/{main.go,generate.go,schema.json,terraform-mapping.json} "$cmd/"
  chmod -R u+w "$dir/cmd"
  (cd "$cmd" && VERSION=$PULUMI_KUBERNETES_VERSION nice -n "$nice_level" go run generate.go)
  save_lock pulumi-kubernetes "$dir"
  (cd "$dir" && gobuild -o "$bin/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X $module/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
    ./cmd/pulumi-resource-kubernetes)
  # Installed as the engine's own plugin cache lays it out, so a PULUMI_HOME
  # whose plugins/ is this directory resolves the provider without a download.
  plugin=$plugins/resource-kubernetes-v$PULUMI_KUBERNETES_VERSION
  rm -rf "$plugin" "$plugin.partial" "$plugin.lock"
  mkdir -p "$plugin"
  install -m 0755 "$bin/pulumi-resource-kubernetes" "$plugin/pulumi-resource-kubernetes"
}

build_etcd() {
  local dir
  dir=$(scratch_module etcd)
  save_lock etcd "$dir"
  require_pin "$dir" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
  (cd "$dir" && gobuild -o "$bin/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
}

build_kubernetes() {
  local dir minor ldflags pkg
  dir=$(scratch_module kubernetes)
  save_lock kubernetes "$dir"
  require_pin "$dir" k8s.io/kubernetes "v$KUBERNETES_VERSION"
  require_pin "$dir" k8s.io/apiserver "v0.${KUBERNETES_VERSION#1.}"
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  # What hack/lib/version.sh links in; without it the binaries report v0.0.0
  # and clients that check the server version refuse it.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$dir" && gobuild -o "$bin/" -ldflags "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
}

# Copies one file of a module, downloaded at a pinned version through the
# module proxy (checked against the checksum database), into crds/.
module_file() {
  local module=$1 version=$2 path=$3 dir
  dir=$(cd "$root/src" && GOFLAGS= go mod download -json "$module@$version" \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/$path" ] || { echo "$module@$version has no $path" >&2; exit 1; }
  install -m 0644 "$dir/$path" "$crds/$(basename "$path")"
}

build_crds() {
  local promop=github.com/prometheus-operator/prometheus-operator kind
  rm -f "$crds"/*.yaml
  module_file github.com/kserve/kserve "v$KSERVE_VERSION" config/crd/full/serving.kserve.io_inferenceservices.yaml
  for kind in servicemonitors podmonitors prometheusrules alertmanagerconfigs; do
    module_file "$promop" "v$PROMETHEUS_OPERATOR_VERSION" "example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml"
  done
}

for c in "${components[@]}"; do
  if [ "$mode" != relock ] && is_built "$c"; then
    log "$c: up to date"
    continue
  fi
  # Two runs at once (two CI jobs, two terminals) build each component once.
  exec 9>"$stamps/$c.lock"
  flock 9
  if [ "$mode" != relock ] && is_built "$c"; then
    log "$c: built meanwhile by another run"
    exec 9>&-
    continue
  fi
  log "$c: building ($(recipe "$c" | head -1))"
  start=$SECONDS
  rm -f "$stamps/$c"
  "build_${c//-/_}"
  recipe "$c" > "$stamps/$c"
  exec 9>&-
  log "$c: done in $((SECONDS - start))s"
done
echo "$root"
