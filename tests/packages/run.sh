#!/usr/bin/env bash
# Consumes the packages of `make pack` the way a user does: a fresh project
# outside the repository references Tandem and Tandem.Remote, restores them
# from the local folder only (every other package from the sources this
# machine already has) into an empty NuGet packages folder, so no stale cache
# hides a broken package, then builds and runs on Native and Remote. Last,
# installs Tandem.Generator as a local tool and generates contracts with it.
#
# Usage: tests/packages/run.sh VERSION PACKAGES_DIR
set -euo pipefail

version=${1:?usage: run.sh VERSION PACKAGES_DIR}
feed=$(realpath "${2:?usage: run.sh VERSION PACKAGES_DIR}")
here=$(cd "$(dirname "$0")" && pwd)
for package in Tandem Tandem.Remote Tandem.Generator; do
    [[ -f "$feed/$package.$version.nupkg" ]] || { echo "test-packages: $feed/$package.$version.nupkg is missing; run 'make pack'" >&2; exit 1; }
done

work=$(mktemp -d -t tandem-packages-XXXXXX)
cleanup() {
    # Workers exit when their supervisor's stdin closes; kill any left by a failed run.
    local pids
    pids=$(pgrep -f "^$work/" || true)
    [[ -z "$pids" ]] || kill $pids 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Bounded: every step has its own limit.
step() { local limit=$1; shift; timeout --kill-after=10 "$limit" "$@"; }

export NUGET_PACKAGES="$work/nuget-packages"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# A consumer configures nothing: the packaged files must be found where they are.
unset TANDEM_NATIVE_LIBRARY TANDEM_WORKER_PATH TANDEM_TEST_KERNELS LD_LIBRARY_PATH

app="$work/app"
mkdir -p "$app"

# Tandem* from the local folder only (package source mapping); everything
# else from the sources configured on this machine, read before the
# consumer's nuget.config exists.
mapfile -t upstream < <(cd "$work" && dotnet nuget list source --format short | awk '$1 == "E" { print $2 }')
[[ ${#upstream[@]} -gt 0 ]] || { echo "test-packages: no enabled NuGet source is configured" >&2; exit 1; }
{
    echo '<?xml version="1.0" encoding="utf-8"?>'
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
} > "$app/nuget.config"

cat > "$app/Consumer.csproj" <<PROJECT
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Tandem" Version="[$version]" />
    <PackageReference Include="Tandem.Remote" Version="[$version]" />
    <PackageReference Include="Microsoft.Extensions.DependencyInjection" Version="10.0.0" />
  </ItemGroup>
</Project>
PROJECT
cp "$here/Consumer/Program.cs" "$app/"

echo "test-packages: restoring and building a consumer of Tandem $version in $app"
step 300 dotnet build "$app" -c Release --disable-build-servers -v quiet -nologo > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; echo "test-packages: the consumer did not build" >&2; exit 1; }

out="$app/bin/Release/net10.0"
[[ -f "$out/libtandem.so" ]] || { echo "test-packages: libtandem.so is not next to the consumer's app" >&2; ls -R "$out" >&2; exit 1; }
[[ -x "$out/tandem-worker" ]] || { echo "test-packages: tandem-worker is missing or not executable next to the consumer's app" >&2; ls -l "$out" >&2; exit 1; }

expected=$(printf '%s' "Tandem, consumed from its packages" | b3sum --no-names)
step 120 dotnet "$out/Consumer.dll" "$expected"

# A publish for linux-x64 takes another route (NuGet's runtimes/ rule for
# libtandem.so, the publish copy for tandem-worker): run that app too.
echo "test-packages: publishing the consumer for linux-x64"
step 300 dotnet publish "$app" -c Release -r linux-x64 --self-contained false -o "$work/publish" --disable-build-servers -v quiet -nologo > "$work/publish.log" 2>&1 \
    || { cat "$work/publish.log" >&2; echo "test-packages: the consumer did not publish" >&2; exit 1; }
[[ -x "$work/publish/tandem-worker" ]] || { echo "test-packages: tandem-worker is missing or not executable in the published app" >&2; ls -l "$work/publish" >&2; exit 1; }
step 120 "$work/publish/Consumer" "$expected"

echo "test-packages: installing Tandem.Generator $version as a local tool"
tool="$work/tool"
mkdir -p "$tool"
cp "$app/nuget.config" "$tool/"
(
    cd "$tool"
    # The CLI remembers where it found each tool version (toolResolverCache
    # under ~/.dotnet); a private home keeps that from pointing at an older
    # run's packages folder.
    export DOTNET_CLI_HOME="$work/cli-home"
    step 60 dotnet new tool-manifest > /dev/null
    step 180 dotnet tool install Tandem.Generator --version "$version" > "$work/tool.log" 2>&1 \
        || { cat "$work/tool.log" >&2; echo "test-packages: Tandem.Generator did not install" >&2; exit 1; }
    step 60 dotnet tool run tandem-generate --library "$out/libtandem.so" --namespace Consumer.Kernels --class Kernels --out generated
)
grep -q 'hash.blake3' -r "$tool/generated" || { echo "test-packages: tandem-generate wrote no contract for hash.blake3" >&2; exit 1; }
grep -q 'class HashBlake3Kernel' "$tool/generated/Kernels.g.cs" || { echo "test-packages: tandem-generate wrote no facade for hash.blake3" >&2; exit 1; }

# The generated contracts and typed facades use the public API only: they
# build in the consumer, warnings as errors.
echo "test-packages: building the consumer with the generated facades"
cp "$tool/generated/Kernels.g.cs" "$app/"
step 300 dotnet build "$app" -c Release --disable-build-servers -v quiet -nologo > "$work/build-generated.log" 2>&1 \
    || { cat "$work/build-generated.log" >&2; echo "test-packages: the consumer did not build with the generated facades" >&2; exit 1; }

echo "test-packages: ok (Tandem, Tandem.Remote and Tandem.Generator $version)"
