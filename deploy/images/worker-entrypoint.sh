#!/bin/sh
# The tandem-worker container's entry point: turns the pod's environment
# into flags (deploy/kubernetes/worker.yaml sets them) and execs the worker,
# so it is PID 1 and gets SIGTERM directly (it drains, then exits 0).
# Arguments given to the container are appended.
#
#   TANDEM_WORKER_LISTEN          HOST:PORT to serve gRPC on (default 0.0.0.0:50051)
#   TANDEM_WORKER_TOKEN           the shared token (required off loopback), read by
#                                 the worker itself; or
#   TANDEM_WORKER_TOKEN_FILE      a file holding it (owned by the worker's user, 0600)
#   TANDEM_WORKER_REPOSITORY      the state repository volume (optional)
#   TANDEM_WORKER_METRICS         HOST:PORT for GET /metrics (optional)
#   TANDEM_WORKER_GRACE           seconds in-flight calls get when draining (default 10)
#   TANDEM_WORKER_MAX_STATE_BYTES bytes of states held at once (optional)
#   TANDEM_WORKER_KERNELS         ':'-separated kernel libraries to serve too (optional)
#   TANDEM_WORKER_TLS_CERT        PEM certificate chain: serve TLS (with TANDEM_WORKER_TLS_KEY);
#                                 reloaded when the mounted Secret changes
#   TANDEM_WORKER_TLS_KEY         its private key (PEM)
#   TANDEM_WORKER_TLS_CLIENT_CA   PEM CAs client certificates must chain to (optional: mutual TLS)
#   TANDEM_WORKER_HEALTH_LISTEN   HOST:PORT for plaintext grpc.health.v1 only, for the kubelet's
#                                 gRPC probes, which speak neither TLS nor tokens (optional)
#   TANDEM_WORKER_BIN             the worker binary (default /usr/local/bin/tandem-worker)
set -eu

bin=${TANDEM_WORKER_BIN:-/usr/local/bin/tandem-worker}
listen=${TANDEM_WORKER_LISTEN:-0.0.0.0:50051}
token=${TANDEM_WORKER_TOKEN_FILE:-}

fail() {
    echo "tandem-worker-entrypoint: $*" >&2
    exit 64
}

[ -x "$bin" ] || fail "no worker binary at $bin (TANDEM_WORKER_BIN)"
if [ -z "$token" ] && [ -z "${TANDEM_WORKER_TOKEN:-}" ]; then
    case "$listen" in
        127.*|localhost:*|\[::1\]:*) ;;
        *) fail "TANDEM_WORKER_LISTEN=$listen is off loopback, so the worker needs a token: set TANDEM_WORKER_TOKEN (from a Secret) or TANDEM_WORKER_TOKEN_FILE" ;;
    esac
elif [ -n "$token" ] && [ ! -r "$token" ]; then
    fail "TANDEM_WORKER_TOKEN_FILE=$token is not a readable file"
fi

tls_cert=${TANDEM_WORKER_TLS_CERT:-}
tls_key=${TANDEM_WORKER_TLS_KEY:-}
if [ -n "$tls_cert" ] || [ -n "$tls_key" ]; then
    [ -n "$tls_cert" ] && [ -n "$tls_key" ] || fail "TANDEM_WORKER_TLS_CERT and TANDEM_WORKER_TLS_KEY go together (a certificate and its key)"
    for file in "$tls_cert" "$tls_key" ${TANDEM_WORKER_TLS_CLIENT_CA:-}; do
        [ -r "$file" ] || fail "$file is not a readable file (mount the TLS Secret; its files need the worker's group: defaultMode 0440 with fsGroup)"
    done
elif [ -n "${TANDEM_WORKER_TLS_CLIENT_CA:-}" ]; then
    fail "TANDEM_WORKER_TLS_CLIENT_CA needs TANDEM_WORKER_TLS_CERT and TANDEM_WORKER_TLS_KEY (the worker's own certificate)"
fi

# The container's own arguments go last; rebuild the list in front of them.
count=$#
set -- "$@" --listen "$listen" --grace "${TANDEM_WORKER_GRACE:-10}"
[ -n "$token" ] && set -- "$@" --token-file "$token"
if [ -n "${TANDEM_WORKER_REPOSITORY:-}" ]; then
    [ -d "$TANDEM_WORKER_REPOSITORY" ] || fail "TANDEM_WORKER_REPOSITORY=$TANDEM_WORKER_REPOSITORY is not a directory (mount the state repository volume there)"
    set -- "$@" --repository "$TANDEM_WORKER_REPOSITORY"
fi
[ -n "${TANDEM_WORKER_METRICS:-}" ] && set -- "$@" --metrics-listen "$TANDEM_WORKER_METRICS"
[ -n "$tls_cert" ] && set -- "$@" --tls-cert "$tls_cert" --tls-key "$tls_key"
[ -n "${TANDEM_WORKER_TLS_CLIENT_CA:-}" ] && set -- "$@" --tls-client-ca "$TANDEM_WORKER_TLS_CLIENT_CA"
[ -n "${TANDEM_WORKER_HEALTH_LISTEN:-}" ] && set -- "$@" --health-listen "$TANDEM_WORKER_HEALTH_LISTEN"
[ -n "${TANDEM_WORKER_MAX_STATE_BYTES:-}" ] && set -- "$@" --max-state-bytes "$TANDEM_WORKER_MAX_STATE_BYTES"
if [ -n "${TANDEM_WORKER_KERNELS:-}" ]; then
    old_ifs=$IFS
    IFS=:
    for library in $TANDEM_WORKER_KERNELS; do
        set -- "$@" --kernels "$library"
    done
    IFS=$old_ifs
fi
# Rotate the container's arguments behind the flags built above.
while [ "$count" -gt 0 ]; do
    first=$1
    shift
    set -- "$@" "$first"
    count=$((count - 1))
done
exec "$bin" "$@"
