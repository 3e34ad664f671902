# The Tandem.Server image: the server published self-contained (no .NET on
# the image) with libtandem.so beside it. Build context: the repository root
# after
#   dotnet publish src/Tandem.Server -c Release -r linux-x64 --self-contained -o artifacts/server
#   docker build -f deploy/images/server.Dockerfile -t tandem-server:0.1.0 .
# No container engine runs on the development machines, so this file is
# checked by deploy/test, not built.
FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libicu72 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin tandem
COPY artifacts/server/ /app/
COPY native/target/release/libtandem.so /app/libtandem.so
USER 10001
EXPOSE 8080
ENTRYPOINT ["/app/Tandem.Server"]
