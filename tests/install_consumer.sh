#!/usr/bin/env bash
# Install meshrt into a scratch prefix and build a program against it the way an
# appliance would: through pkg-config, shared and static, and through CMake's
# find_package(meshrt) (meshrt::meshrt static, meshrt::meshrt_shared).
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
    printf("%s\n%s\n", mrt_version(), mrt_strerror(rc));
    return strcmp(mrt_strerror(rc), "invalid mesh configuration") != 0 ||
           strcmp(mrt_version(), MRT_VERSION_STRING) != 0;
}
C
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer_shared" "$prefix/consumer.c" $(pkg-config --cflags --libs meshrt)
out="$(LD_LIBRARY_PATH="$(pkg-config --variable=libdir meshrt)" "$prefix/consumer_shared")"
echo "$out"
# The package says the version the library says (one source: MRT_VERSION_* in mrt_core.h).
[ "$(head -n1 <<<"$out")" = "$(pkg-config --modversion meshrt)" ] \
    || { echo "install_consumer: mrt_version() is not pkg-config's $(pkg-config --modversion meshrt)" >&2; exit 1; }
# Static meshrt, shared system libraries: everything from `pkg-config --static`
# (its Libs.private), with -lmeshrt pinned to the archive.
static_libs="$(pkg-config --static --libs meshrt)"
echo "pkg-config --static --libs meshrt: $static_libs"
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Werror -o "$prefix/consumer_static" "$prefix/consumer.c" \
    $(pkg-config --cflags meshrt) ${static_libs/-lmeshrt/-l:libmeshrt.a}
# (ldd into a variable: `ldd | grep -q` under pipefail fails when grep stops reading early.)
libs="$(ldd "$prefix/consumer_static")"
if grep -q libmeshrt <<<"$libs"; then
    echo "install_consumer: consumer_static links libmeshrt dynamically" >&2
    exit 1
fi
"$prefix/consumer_static"

# find_package(meshrt), with the version asked for; the static target brings its dependencies.
mkdir "$prefix/cmake_consumer"
cp "$prefix/consumer.c" "$prefix/cmake_consumer/"
cat > "$prefix/cmake_consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(consumer LANGUAGES C)
find_package(meshrt 0.1 REQUIRED)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE meshrt::meshrt)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared PRIVATE meshrt::meshrt_shared)
CMAKE
cmake -S "$prefix/cmake_consumer" -B "$prefix/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cmake_build" >/dev/null
libs="$(ldd "$prefix/cmake_build/consumer_static")"
if grep -q libmeshrt <<<"$libs"; then
    echo "install_consumer: meshrt::meshrt links libmeshrt dynamically" >&2
    exit 1
fi
libs="$(ldd "$prefix/cmake_build/consumer_shared")"
grep -q "libmeshrt.so" <<<"$libs" \
    || { echo "install_consumer: meshrt::meshrt_shared does not link libmeshrt.so" >&2; exit 1; }
"$prefix/cmake_build/consumer_static"
"$prefix/cmake_build/consumer_shared"
# A version the package does not provide is refused (0.x: the same minor only).
mkdir "$prefix/cmake_version"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v LANGUAGES C)\nfind_package(meshrt 0.99 REQUIRED)\n' \
    > "$prefix/cmake_version/CMakeLists.txt"
if cmake -S "$prefix/cmake_version" -B "$prefix/cmake_version/b" -DCMAKE_PREFIX_PATH="$prefix" \
        >/dev/null 2>&1; then
    echo "install_consumer: find_package(meshrt 0.99) accepted the installed 0.1" >&2
    exit 1
fi
echo "install_consumer: pkg-config (shared, static) and find_package (static, shared) consumers built and ran"
