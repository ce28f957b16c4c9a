#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Config and plugin errors from the real smcore binary; needs no KVM.
set -euo pipefail
smcore=$1
test_plugins=$2
source "$(dirname "$0")/lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '[machine]\nmemory = 256M\nvcpu = 2\n' >"$work/typo.ini"
run_capture "misspelled key" "$smcore" --config "$work/typo.ini"
check "misspelled key exits 2" [ "$status" -eq 2 ]
check "misspelled key names FILE:LINE: section.key" contains "$err" "$work/typo.ini:3: machine.vcpu: unknown key"

printf '[machine]\nmemory = 12X\n' >"$work/size.ini"
run_capture "bad size" "$smcore" --config "$work/size.ini" -- /bin/true
check "bad size exits 2" [ "$status" -eq 2 ]
check "bad size names the value" contains "$err" "$work/size.ini:2: machine.memory: invalid size '12X'"

printf '[kernel]\nkernel = missing-vmlinux\n' >"$work/kernel.ini"
run_capture "missing kernel" "$smcore" --config "$work/kernel.ini" -- /bin/true
check "missing kernel exits 2" [ "$status" -eq 2 ]
check "missing kernel names the resolved path" contains "$err" "$work/missing-vmlinux"

printf '[machine]\nmemory = 256M\n' >"$work/good.ini"
run_capture "bad --set" "$smcore" --config "$work/good.ini" --set machine.vcpus=0 -- /bin/true
check "bad --set exits 2" [ "$status" -eq 2 ]
check "bad --set is named" contains "$err" "machine.vcpus"

run_capture "no command" "$smcore" --config "$work/good.ini"
check "no command exits 2" [ "$status" -eq 2 ]
check "no command explains the fix" contains "$err" "no command to run"

run_capture "unknown option" "$smcore" --bogus
check "unknown option exits 2" [ "$status" -eq 2 ]

run_capture "plugins" "$smcore" plugins
check "plugins lists hv-kvm" contains "$out" "hv-kvm"
check "plugins shows the kind and ABI" contains "$out" "accelerator"

run_capture "plugins with test plugins" "$smcore" plugins --plugin-path "$test_plugins"
check "other ABI major rejected with both versions" contains "$out" "built for ABI 2.3, this smcore supports ABI 1.1"
check "good test plugin listed" contains "$out" "test-good-accel"

printf '[machine]\naccelerator = test-abi-major\nplugin_dir = %s\n' "$test_plugins" >"$work/abi.ini"
run_capture "ABI mismatch at run" "$smcore" --config "$work/abi.ini" -- /bin/true
check "ABI mismatch at run exits 1" [ "$status" -eq 1 ]
check "ABI mismatch at run names the file" contains "$err" "$test_plugins/test-abi-major.so: plugin ABI mismatch"

# Device sections are checked before the accelerator, so these run on any host.
printf '[machine]\nmemory = 256M\n\n[device.disk0]\nplugin = virtio-blk\n' >"$work/device.ini"
run_capture "unknown device plugin" "$smcore" --config "$work/device.ini" -- /bin/true
check "unknown device plugin exits 2" [ "$status" -eq 2 ]
check "unknown device plugin is named with its line" contains "$err" "$work/device.ini:5: device.disk0.plugin: device plugin 'virtio-blk' not found"

printf '[device.disk0]\nplugin = dev-blk\nsize = 1G\n' >"$work/device-key.ini"
run_capture "unknown device key" "$smcore" --config "$work/device-key.ini" -- /bin/true
check "unknown device key exits 2" [ "$status" -eq 2 ]
check "unknown device key lists the plugin's keys" contains "$err" "$work/device-key.ini:3: device.disk0.size: unknown key for plugin dev-blk (its keys: path"

printf '[machine]\nvcpus = 1\n\n[device.disk0]\nplugin = dev-blk\nreadonly = true\n' >"$work/device-nopath.ini"
run_capture "device without path" "$smcore" --config "$work/device-nopath.ini" -- /bin/true
check "device without path exits 2" [ "$status" -eq 2 ]
check "device without path names the section's line" contains "$err" "$work/device-nopath.ini:4: device.disk0.path: missing"

printf '[device.disk0]\nplugin = ../dev-blk\n' >"$work/device-plugin-path.ini"
run_capture "device plugin given as a path" "$smcore" --config "$work/device-plugin-path.ini" -- /bin/true
check "device plugin given as a path exits 2" [ "$status" -eq 2 ]
check "device plugin given as a path is explained" contains "$err" "device.disk0.plugin: '../dev-blk' is a path"

run_capture "device value from --set" "$smcore" --config "$work/device-nopath.ini" \
	--set device.disk0.path=/dev/null --set device.disk0.readonly=maybe -- /bin/true
check "device value from --set exits 2" [ "$status" -eq 2 ]
check "device value from --set is named as --set" contains "$err" "--set device.disk0.readonly=maybe: device.disk0.readonly:"

printf '[device.disk0]\nplugin = dev-blk\npath = missing.img\n' >"$work/device-path.ini"
run_capture "missing disk image" "$smcore" --config "$work/device-path.ini" -- /bin/true
check "missing disk image exits 2" [ "$status" -eq 2 ]
check "missing disk image is named with its resolved path" contains "$err" "$work/device-path.ini:3: device.disk0.path: cannot open '$work/missing.img'"

printf '[initramfs]\nfile = /bin/sh /init\n' >"$work/reserved.ini"
run_capture "reserved guest path" "$smcore" --config "$work/reserved.ini" -- /bin/true
check "reserved guest path exits 2" [ "$status" -eq 2 ]
check "reserved guest path is named" contains "$err" "$work/reserved.ini:2: initramfs.file: guest path /init is reserved"

run_capture "empty command" "$smcore" --config "$work/good.ini" -- ''
check "empty command exits 2" [ "$status" -eq 2 ]
check "empty command is explained" contains "$err" "the command is an empty string"

mkdir "$work/junk"
head -c 3000 "$(dirname "$smcore")/../lib/smcore/plugins/hv-kvm.so" >"$work/junk/hv-kvm.so"
mkfifo "$work/junk/fifo.so"
run_capture "junk plugins" timeout 20 "$smcore" plugins --plugin-path "$work/junk"
check "junk plugins list exits 0" [ "$status" -eq 0 ]
check "a truncated plugin is rejected, not loaded" contains "$out" "lies past the end of the file"
check "a FIFO is rejected, not opened" contains "$out" "not a regular file"
run_capture "truncated accelerator" timeout 20 "$smcore" --plugin-path "$work/junk" --config "$work/good.ini" -- /bin/true
check "a truncated accelerator fails with exit 1" [ "$status" -eq 1 ]

finish
