#!/bin/sh
# Makes sure a Vulkan driver is present; with none, installs Mesa's (lavapipe, a software
# Vulkan that runs on the CPU). Idempotent: does nothing when a driver is already there.
set -eu

case "$(uname -s)" in
  Darwin) exit 0 ;;  # Metal needs nothing installed.
esac

have_driver() {
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    ls "$d"/*.json >/dev/null 2>&1 && return 0
  done
  [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]
}
have_loader() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ]
}

if have_driver && have_loader; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "phaseflow: no Vulkan driver found; installing Mesa's Vulkan drivers (lavapipe)..." >&2
if command -v apt-get >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
elif command -v dnf >/dev/null 2>&1; then
  $sudo dnf install -y -q mesa-vulkan-drivers vulkan-loader
elif command -v pacman >/dev/null 2>&1; then
  $sudo pacman -S --noconfirm --needed vulkan-swrast vulkan-icd-loader
else
  echo "phaseflow: install Mesa's Vulkan driver (lavapipe) with your package manager" >&2
  exit 1
fi
