#!/usr/bin/env bash
# `make image`: build the operator image from the Dockerfile.
#
# 1. The project and its dependencies are built as wheels on the host (dist/wheels/), so the
#    image build needs no network and pip's index settings stay outside the image.
# 2. With a working Docker engine: `docker build`. Otherwise (this project's CI, machines with
#    no container registry): buildah, over a base image made by debootstrap from the machine's
#    own apt mirror. The base rootfs is cached in ~/.cache/collectionflow/images/.
#
# Settings: IMAGE (default collectionflow-operator:<version>), IMAGE_BUILDER (docker|buildah,
# default: docker when `docker info` answers), BASE_IMAGE (docker only; the Dockerfile's
# default is python:3.11-slim), PYTHON (the interpreter that builds the wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'build-image: %s\n' "$*" >&2; }

python="${PYTHON:-.venv/bin/python}"
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
image="${IMAGE:-collectionflow-operator:$version}"
builder="${IMAGE_BUILDER:-}"
if [ -z "$builder" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then builder=docker; else builder=buildah; fi
fi

start=$(date +%s)
# What the image is made of; an image already built from the same inputs is not built again.
inputs=$(find Dockerfile pyproject.toml README.md operator -type f ! -name '*.pyc' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
label="io.collectionflow.inputs"

wheels() {
  say "wheels for the project and its dependencies -> dist/wheels/"
  rm -rf dist/wheels
  mkdir -p dist
  "$python" -m pip wheel --quiet --wheel-dir dist/wheels '.[ui]' >dist/wheels.log 2>&1 \
    || { tail -20 dist/wheels.log >&2; say "pip wheel failed (dist/wheels.log)"; exit 1; }
}

if [ "$builder" = docker ]; then
  wheels
  docker build ${BASE_IMAGE:+--build-arg "BASE_IMAGE=$BASE_IMAGE"} --label "$label=$inputs" -t "$image" .
  say "built $image with docker in $(( $(date +%s) - start ))s"
  exit 0
fi

# --- buildah, over a debootstrap'd Debian base -----------------------------------------------
suite=bookworm  # its python3 is 3.11, the version the host's wheels are built for
arch=$(dpkg --print-architecture)
base="localhost/collectionflow-base:$suite-$arch"
storage=(--storage-driver "${STORAGE_DRIVER:-overlay}")
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for tool in buildah podman debootstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from apt"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" uidmap >/dev/null
fi

# The machine's own Debian mirror, read from its apt sources (never a host name of ours).
apt_mirror() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk -v suite="$suite" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
      /^$/ { uri = "" }
      END { print found }' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ]; then
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { print $(i-1); exit } }'\
      /etc/apt/sources.list
  fi
}

if ! $sudo buildah "${storage[@]}" images --quiet "$base" >/dev/null 2>&1; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/collectionflow/images"
  tarball="$cache/rootfs-$suite-$arch.tar"
  if [ ! -s "$tarball" ]; then
    mirror=$(apt_mirror)
    [ -n "$mirror" ] || { say "no apt source for Debian $suite found in /etc/apt"; exit 1; }
    say "debootstrap $suite ($arch) from this machine's apt mirror (once, cached in $cache)"
    mkdir -p "$cache"
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/cf-rootfs.XXXXXX")
    trap '$sudo rm -rf "$rootfs"' EXIT
    $sudo debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
    # What a slim base leaves out: package caches, documentation, manual pages, translations.
    $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
      "$rootfs"/usr/share/locale/*
    $sudo chmod 0755 "$rootfs"  # mktemp made it 0700: the image's / would be closed to non-root
    $sudo tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
  fi
  say "importing the base image $base"
  $sudo podman "${storage[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    "$tarball" "$base" >/dev/null 2>&1
fi

built=$($sudo buildah "${storage[@]}" inspect --type image \
  --format "{{index .OCIv1.Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [ "$built" = "$inputs" ]; then
  say "$image is up to date (inputs $inputs)"
  exit 0
fi

wheels
say "buildah bud $image (base $base)"
$sudo buildah "${storage[@]}" bud --quiet --isolation chroot --pull=never --layers \
  --build-arg "BASE_IMAGE=$base" --label "$label=$inputs" -t "$image" . >/dev/null
size=$($sudo buildah "${storage[@]}" images --format '{{.Size}}' "$image" | head -1)
say "built $image ($size) with buildah in $(( $(date +%s) - start ))s"
