#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages (as root, when missing),
# a .venv at the repo root, and mmreason installed editable with all extras.
# Re-running is cheap: the pip step is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: headless Chromium (GUI data + demo tests), espeak-ng/sox (speech audio),
# libusb + Vulkan/Mesa (open3d import and its offscreen renderer), ffmpeg (video fixtures), fonts.
APT_PACKAGES=(chromium espeak-ng sox libsndfile1 libusb-1.0-0 libvulkan1 mesa-vulkan-drivers libgl1 libgomp1
              ffmpeg fonts-dejavu-core)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.mmreason-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "[setup] installing mmreason[all] into .venv (first run: torch alone is a few GB)"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".[all]"
    rm -f .venv/.mmreason-*
    touch "$stamp"
fi
