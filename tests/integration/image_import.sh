#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `smcore image import` on small oci-archive tarballs built here: a good image,
# one whose layer escapes with "../", and output and usage errors. Needs no KVM.
set -euo pipefail
smcore=$1
source "$(dirname "$0")/lib.sh"

if ! command -v mksquashfs >/dev/null || ! command -v unsquashfs >/dev/null; then
	echo "skipped: mksquashfs and unsquashfs are needed; install squashfs-tools" >&2
	exit 77
fi

work=$(mktemp -d)
staging=$(mktemp -d)
trap 'rm -rf "$work" "$staging"' EXIT
mkdir "$work/out"

# add_blob LAYOUT FILE: move FILE into LAYOUT's blobs and print "DIGEST SIZE".
add_blob() {
	local layout=$1 file=$2 hex size
	hex=$(sha256sum "$file" | cut -d' ' -f1)
	size=$(stat -c %s "$file")
	mv "$file" "$layout/blobs/sha256/$hex"
	echo "sha256:$hex $size"
}

# make_image NAME LAYER_TAR: write $work/NAME.oci.tar, an oci-archive with the
# one layer LAYER_TAR, and set $manifest_digest to its manifest's sha256 hex.
make_image() {
	local name=$1 layer=$2 layout
	local config_digest config_size layer_digest layer_size manifest_size

	layout=$staging/$name-layout
	mkdir -p "$layout/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
	printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["cat","/etc/hello"]},"rootfs":{"type":"layers","diff_ids":[]}}' \
		>"$staging/config.json"
	read -r config_digest config_size < <(add_blob "$layout" "$staging/config.json")
	read -r layer_digest layer_size < <(add_blob "$layout" "$layer")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
		"$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$staging/manifest.json"
	manifest_size=$(stat -c %s "$staging/manifest.json")
	manifest_digest=$(sha256sum "$staging/manifest.json" | cut -d' ' -f1)
	add_blob "$layout" "$staging/manifest.json" >/dev/null
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' \
		"$manifest_digest" "$manifest_size" >"$layout/index.json"
	tar -C "$layout" -cf "$work/$name.oci.tar" .
}

# A good layer: etc/hello.
mkdir -p "$staging/good/etc"
echo hello >"$staging/good/etc/hello"
tar -C "$staging/good" -cf "$staging/good.tar" etc
make_image good "$staging/good.tar"
good_digest=$manifest_digest

# A bad layer: a file, then "../escape". GNU tar keeps the ".." only with --absolute-names.
mkdir -p "$staging/bad/inner"
echo evil >"$staging/bad/escape"
echo fine >"$staging/bad/inner/ok"
(cd "$staging/bad/inner" && tar --absolute-names -cf "$staging/bad.tar" ok ../escape)
make_image bad "$staging/bad.tar"

run_capture "escaping layer" "$smcore" image import "$work/bad.oci.tar" --output "$work/out/bad.squashfs"
check "escaping layer exits 1" [ "$status" -eq 1 ]
check "escaping layer names the entry" contains "$err" "entry ../escape"
check "escaping layer names the image" contains "$err" "$work/bad.oci.tar"
check "escaping layer leaves no output" [ ! -e "$work/out/bad.squashfs" ]
check "escaping layer leaves no temporary file" [ -z "$(ls -A "$work/out")" ]
check "escaping layer writes nothing outside" [ -z "$(find "$work" -name escape)" ]

run_capture "good import" "$smcore" image import "$work/good.oci.tar" --output "$work/out/good.squashfs"
check "good import exits 0" [ "$status" -eq 0 ]
check "good import prints the digest and path" \
	[ "$out" = "imported sha256:$good_digest to $work/out/good.squashfs" ]
check "good import contains etc/hello" contains "$(unsquashfs -l "$work/out/good.squashfs")" "squashfs-root/etc/hello"
check "good import leaves only the output" [ "$(ls -A "$work/out")" = "good.squashfs" ]

run_capture "missing output directory" "$smcore" image import "$work/good.oci.tar" --output "$work/missing/good.squashfs"
check "missing output directory exits 1" [ "$status" -eq 1 ]
check "missing output directory is named" contains "$err" "$work/missing"
check "missing output directory explains the fix" contains "$err" "must exist and be writable"

run_capture "missing source" "$smcore" image import "$work/none.oci.tar" --output "$work/out/none.squashfs"
check "missing source exits 1" [ "$status" -eq 1 ]
check "missing source is named" contains "$err" "$work/none.oci.tar"

run_capture "first cached import" env SMCORE_CACHE_DIR="$work/cache" "$smcore" image import "$work/good.oci.tar"
check "first cached import exits 0" [ "$status" -eq 0 ]
check "first cached import prints the cache path" \
	[ "$out" = "imported sha256:$good_digest to $work/cache/images/$good_digest.squashfs" ]
run_capture "second cached import" env SMCORE_CACHE_DIR="$work/cache" "$smcore" image import "$work/good.oci.tar"
check "second cached import exits 0" [ "$status" -eq 0 ]
check "second cached import uses the cache" \
	[ "$out" = "cached sha256:$good_digest at $work/cache/images/$good_digest.squashfs" ]

cp "$work/good.oci.tar" "$work/same.tar"
run_capture "output is the source" "$smcore" image import "$work/same.tar" --output "$work/same.tar"
check "output is the source exits 1" [ "$status" -eq 1 ]
check "output is the source is explained" contains "$err" "the output is the image itself"
check "output is the source leaves the image" cmp -s "$work/good.oci.tar" "$work/same.tar"

# A stop signal during an import stops mksquashfs and removes the temporary files.
mkdir "$work/slow-bin" "$work/stopped"
printf '#!/bin/sh\nexec sleep 30\n' >"$work/slow-bin/mksquashfs"
chmod +x "$work/slow-bin/mksquashfs"
PATH="$work/slow-bin:$PATH" "$smcore" image import "$work/good.oci.tar" --output "$work/stopped/x.squashfs" \
	>/dev/null 2>"$work/stopped.err" &
importer=$!
for _ in $(seq 50); do
	pgrep -f "$work/slow-bin/mksquashfs|sleep 30" >/dev/null && break
	sleep 0.1
done
kill -TERM "$importer"
status=0
wait "$importer" || status=$?
check "a stopped import exits 143" [ "$status" -eq 143 ]
check "a stopped import says so" grep -q "the import was interrupted" "$work/stopped.err"
check "a stopped import leaves nothing behind" [ -z "$(ls -A "$work/stopped")" ]
check "a stopped import stops mksquashfs" [ -z "$(pgrep -f "$work/slow-bin/mksquashfs" || true)" ]

run_capture "output twice" "$smcore" image import "$work/good.oci.tar" --output "$work/a" --output "$work/b"
check "output twice exits 2" [ "$status" -eq 2 ]
check "output twice names both" contains "$err" "--output given twice"
run_capture "import with a config" "$smcore" image import "$work/good.oci.tar" --config "$work/x.ini"
check "import with a config exits 2" [ "$status" -eq 2 ]
check "import with a config is explained" contains "$err" "image import takes no --config"

run_capture "no source" "$smcore" image import
check "no source exits 2" [ "$status" -eq 2 ]
check "no source shows the usage" contains "$err" "smcore image import SRC"
run_capture "unknown image command" "$smcore" image export "$work/good.oci.tar"
check "unknown image command exits 2" [ "$status" -eq 2 ]

finish
