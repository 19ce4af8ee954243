#!/usr/bin/env bash
# Install meshrt into a scratch prefix and build a program against it the way an
# appliance would: through pkg-config only, shared and static.
set -euo pipefail
build="$1"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc="$(dirname "$(find "$prefix" -name meshrt.pc | head -n1)")"
export PKG_CONFIG_PATH="$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cat > "$prefix/consumer.c" <<'C'
#include <meshrt/mrt_runtime.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    mrt_mesh_config cfg;
    mrt_mesh_config_default(&cfg, 2);
    mrt_mesh *m = NULL;
    if (mrt_mesh_create(&cfg, &m) != MRT_OK)
        return 1;
    mrt_mesh_destroy(m);
    cfg.ring_size = 1000;
    int rc = mrt_mesh_create(&cfg, &m);
    printf("%s\n", mrt_strerror(rc));
    return strcmp(mrt_strerror(rc), "invalid mesh configuration") != 0;
}
C
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer_shared" "$prefix/consumer.c" $(pkg-config --cflags --libs meshrt)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir meshrt)" "$prefix/consumer_shared"
# Static meshrt, shared system libraries: everything from `pkg-config --static`
# (its Libs.private), with -lmeshrt pinned to the archive.
static_libs="$(pkg-config --static --libs meshrt)"
echo "pkg-config --static --libs meshrt: $static_libs"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer_static" "$prefix/consumer.c" \
    $(pkg-config --cflags meshrt) ${static_libs/-lmeshrt/-l:libmeshrt.a}
if ldd "$prefix/consumer_static" | grep -q libmeshrt; then
    echo "install_consumer: consumer_static links libmeshrt dynamically" >&2
    exit 1
fi
"$prefix/consumer_static"
echo "install_consumer: shared and static consumers built and ran"
