#!/usr/bin/env bash
# Provide kube-apiserver, kube-controller-manager and etcd for the local test control plane.
#
# Prints the chosen source on stderr and, on stdout, the directory that holds the three
# binaries (the layout envtest's KUBEBUILDER_ASSETS uses). Resolution order, first wins:
#   1. KUBE_APISERVER / KUBE_CONTROLLER_MANAGER / ETCD (all three), or KUBEBUILDER_ASSETS
#   2. the cache ~/.cache/collectionflow/k8s/<version>/ from an earlier run
#   3. Debian/Ubuntu: etcd-server from apt, the two Kubernetes binaries built from Debian's
#      source package `kubernetes` (with reflect2 v1.0.2 swapped into its vendor tree)
#   4. elsewhere: upstream release binaries (needs network access to the Kubernetes release
#      host; set K8S_RELEASE_BASE_URL to a mirror of your own if you have one)
set -euo pipefail

version="${K8S_VERSION:-1.20.2}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/collectionflow/k8s"
cache="$cache_root/$version"
bins=(kube-apiserver kube-controller-manager etcd)

say() { printf 'provision-k8s: %s\n' "$*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

# 1. Explicit binaries.
if [ -n "${KUBE_APISERVER:-}" ] && [ -n "${KUBE_CONTROLLER_MANAGER:-}" ] && [ -n "${ETCD:-}" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/cf-k8s-bins.XXXXXX")
  ln -s "$KUBE_APISERVER" "$dir/kube-apiserver"
  ln -s "$KUBE_CONTROLLER_MANAGER" "$dir/kube-controller-manager"
  ln -s "$ETCD" "$dir/etcd"
  say "using binaries from KUBE_APISERVER, KUBE_CONTROLLER_MANAGER and ETCD"
  echo "$dir"; exit 0
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  have_all "$KUBEBUILDER_ASSETS" || { say "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${bins[*]}"; exit 1; }
  say "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi

# 2. Cache.
if have_all "$cache"; then
  say "using cached binaries in $cache"
  echo "$cache"; exit 0
fi

mkdir -p "$cache"

# 3. Debian: build from the distribution's own source package.
if command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
  say "building Kubernetes $version from Debian's source package (takes about 7 minutes once)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # deb-src entries for the mirrors this machine already uses, derived from its own sources.
  if ! apt-cache showsrc kubernetes >/dev/null 2>&1 || [ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        | $sudo tee /etc/apt/sources.list.d/collectionflow-src.sources >/dev/null
    elif [ -f /etc/apt/sources.list ]; then
      grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
        | $sudo tee /etc/apt/sources.list.d/collectionflow-src.list >/dev/null
    fi
    $sudo apt-get update -qq
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    etcd-server golang-go rsync jq dpkg-dev golang-github-modern-go-reflect2-dev >/dev/null
  work=$(mktemp -d "${TMPDIR:-/tmp}/cf-k8s-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq --download-only kubernetes >/dev/null 2>&1 \
     && dpkg-source -x --no-check kubernetes_*.dsc src >/dev/null)
  src="$work/src"
  # reflect2 v1.0.1 faults at run time under Go >= 1.18; Debian packages v1.0.2.
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
  mkdir -p "$src/.go/src/k8s.io"
  ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  (cd "$src" && env GOPATH="$src/.go" CGO_ENABLED=0 HOME="$work" GOFLAGS=-mod=vendor \
     GOCACHE="$work/gocache" \
     make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1) \
     || { tail -40 "$work/build.log" >&2; say "build failed"; exit 1; }
  cp "$src/_output/bin/kube-apiserver" "$src/_output/bin/kube-controller-manager" "$cache/"
  ln -sf "$(command -v etcd)" "$cache/etcd"
  have_all "$cache"
  say "built into $cache"
  echo "$cache"; exit 0
fi

# 4. Elsewhere: upstream release binaries.
base="${K8S_RELEASE_BASE_URL:-https://dl.k8s.io/v$version/bin}"
etcd_version="${ETCD_VERSION:-3.4.13}"
os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64|arm64) arch=arm64;; esac
say "downloading Kubernetes $version release binaries for $os/$arch"
for b in kube-apiserver kube-controller-manager; do
  curl -fsSL -o "$cache/$b" "$base/$os/$arch/$b" && chmod +x "$cache/$b"
done
etcd_base="${ETCD_RELEASE_BASE_URL:-https://github.com/etcd-io/etcd/releases/download}"
curl -fsSL "$etcd_base/v$etcd_version/etcd-v$etcd_version-$os-$arch.tar.gz" \
  | tar -xz -C "$cache" --strip-components=1 "etcd-v$etcd_version-$os-$arch/etcd"
have_all "$cache"
echo "$cache"
