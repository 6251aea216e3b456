#!/bin/sh
# Builds bench/native/build/sgemm.node (needs gcc and Node's headers, e.g. Debian's nodejs-dev
# or /usr/include/node). The bench skips the native variant when this fails.
set -e
dir=$(dirname "$0")
inc=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
[ -f "$inc/node_api.h" ] || inc=/usr/include/node
mkdir -p "$dir/build"
gcc -O2 -shared -fPIC -I"$inc" "$dir/sgemm.c" -o "$dir/build/sgemm.node" -ldl
