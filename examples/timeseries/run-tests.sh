#!/usr/bin/env bash
# Builds and tests the example the way its users would, against the Tandem
# packages of VERSION in the local feed FEED (what `make pack` writes):
#   1. builds the kernel library (native/) and runs its Rust tests;
#   2. generates the C# contracts from the library with Tandem.Generator and
#      fails if the committed ones (dotnet/Timeseries.Kernels/Generated)
#      differ; with --generate, writes them there instead;
#   3. builds the solution (dotnet/) against the packages: Tandem* come from
#      FEED only, and restore goes into an empty NuGet packages folder, so a
#      stale cache can't hide a broken package;
#   4. runs the tests on Managed, Native and Remote (real tandem-worker).
#
# Usage: run-tests.sh VERSION FEED [--generate]
set -euo pipefail

usage="usage: run-tests.sh VERSION FEED [--generate]"
version=${1:?$usage}
feed=$(realpath "${2:?$usage}")
generate=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
for package in Tandem Tandem.Remote Tandem.Generator Tandem.Testing; do
    [[ -f "$feed/$package.$version.nupkg" ]] || { echo "example: $feed/$package.$version.nupkg is missing; run 'make pack' in Tandem's repository" >&2; exit 1; }
done

library="$here/native/target/release/libtimeseries_kernels.so"
tests_out="$here/dotnet/Timeseries.Kernels.Tests/bin/Release/net10.0"
work=$(mktemp -d -t tandem-example-XXXXXX)
cleanup() {
    # Workers exit when their supervisor's stdin closes; kill any a failed run left.
    local pids
    pids=$(pgrep -f "^$tests_out/tandem-worker" || true)
    [[ -z "$pids" ]] || kill $pids 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Bounded: every step has its own limit.
step() { local limit=$1; shift; timeout --kill-after=10 "$limit" "$@"; }

export NUGET_PACKAGES="$work/nuget-packages"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Everything must be found where the packages and this project put it.
unset TANDEM_NATIVE_LIBRARY TANDEM_WORKER_PATH TANDEM_TEST_KERNELS LD_LIBRARY_PATH

# rustup's cargo, even when ~/.cargo/bin is not on PATH (never Debian's older one).
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

echo "example: building and testing the kernel library (native/)"
(
    cd "$here/native"
    step 60 cargo fmt --check
    step 1800 cargo build --release --locked
    step 1200 cargo test --release --locked --quiet
)

# Tandem* from the feed only (package source mapping); everything else from
# the sources this machine already has, read before the example's own
# nuget.config exists so it is not read back.
rm -f "$here/dotnet/nuget.config"
mapfile -t upstream < <(cd "$work" && dotnet nuget list source --format short | awk '$1 == "E" { print $2 }')
[[ ${#upstream[@]} -gt 0 ]] || { echo "example: no enabled NuGet source is configured" >&2; exit 1; }
{
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo '<!-- Written by run-tests.sh for this machine; not committed. -->'
    echo '<configuration>'
    echo '  <packageSources>'
    echo '    <clear />'
    echo "    <add key=\"tandem-local\" value=\"$feed\" />"
    for i in "${!upstream[@]}"; do echo "    <add key=\"upstream-$i\" value=\"${upstream[$i]//&/&amp;}\" />"; done
    echo '  </packageSources>'
    echo '  <packageSourceMapping>'
    echo '    <packageSource key="tandem-local"><package pattern="Tandem" /><package pattern="Tandem.*" /></packageSource>'
    for i in "${!upstream[@]}"; do echo "    <packageSource key=\"upstream-$i\"><package pattern=\"*\" /></packageSource>"; done
    echo '  </packageSourceMapping>'
    echo '</configuration>'
} > "$work/nuget.config"
cp "$work/nuget.config" "$here/dotnet/nuget.config"

echo "example: generating the C# contracts with Tandem.Generator $version"
generated="$here/dotnet/Timeseries.Kernels/Generated"
(
    cd "$work"
    # A private CLI home: the CLI remembers where it found each tool version,
    # and that must not point at an older run's packages folder.
    export DOTNET_CLI_HOME="$work/cli-home"
    step 60 dotnet new tool-manifest > /dev/null
    step 180 dotnet tool install Tandem.Generator --version "$version" > "$work/tool.log" 2>&1 \
        || { cat "$work/tool.log" >&2; echo "example: Tandem.Generator did not install" >&2; exit 1; }
    step 60 dotnet tool run tandem-generate --library "$library" \
        --namespace Timeseries.Kernels --class TimeseriesKernels --out "$work/generated" > /dev/null
)
if [[ "$generate" == --generate ]]; then
    rm -rf "$generated" && cp -r "$work/generated" "$generated"
    echo "example: wrote $generated"
elif ! diff -ru "$generated" "$work/generated"; then
    echo "example: $generated is stale: run '$0 $version $feed --generate' and commit it" >&2
    exit 1
fi

echo "example: building dotnet/Timeseries.slnx against Tandem $version"
step 600 dotnet build "$here/dotnet/Timeseries.slnx" -c Release -p:TandemVersion="$version" \
    --disable-build-servers -v quiet -nologo > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; echo "example: the solution did not build" >&2; exit 1; }
[[ -f "$tests_out/libtimeseries_kernels.so" ]] || { echo "example: libtimeseries_kernels.so is not next to the tests" >&2; exit 1; }
[[ -x "$tests_out/tandem-worker" ]] || { echo "example: tandem-worker is not next to the tests" >&2; exit 1; }

echo "example: testing on Managed, Native and Remote"
step 600 dotnet test "$here/dotnet/Timeseries.slnx" -c Release --no-build --disable-build-servers -nologo

echo "example: ok (timeseries.ewma against Tandem $version)"
