# syntax=docker/dockerfile:1
#
# zoho-meeting-proxy as a container: a sidecar next to your application, or one replica of a
# small pool. Build: `docker build -t zoho-meeting-proxy .`
#
# The same file builds the image from a binary built elsewhere (what the tests do, with
# buildah): a build context named `build` replaces the build stage, so the directory given
# must hold out/usr/local/bin/zoho-meeting-proxy and out/var/lib/zoho-meeting-proxy/ (mode
# 0700, owner 65532), and RUNTIME_BASE may name another base with the same content:
#   buildah bud --format docker --build-context build=DIR \
#     --build-arg RUNTIME_BASE=localhost/cc-base -t zoho-meeting-proxy .
#
# Configuration is by environment (`ZOHO_PROXY_<SECTION>__<KEY>`), secrets by mounted files
# (`ZOHO_PROXY_OAUTH__CLIENT_SECRET_FILE`, `ZOHO_PROXY_OAUTH__REFRESH_TOKEN_FILE`). Logs are
# JSON on standard output. SIGHUP (or a change to a mounted secret file) reloads the
# configuration and secrets; SIGTERM drains within `server.shutdown_grace` (30 s).

# The runtime base: glibc, libgcc_s, the CA roots and a `nonroot` user 65532; no shell.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

# --- build -----------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/zoho-meeting-proxy /out/usr/local/bin/zoho-meeting-proxy \
    && install -d -m 0700 -o 65532 -g 65532 /out/var/lib/zoho-meeting-proxy

# --- run: glibc, CA roots, no shell, uid 65532 -------------------------------------------
FROM ${RUNTIME_BASE}
COPY --from=build /out/ /
USER 65532:65532

# The sidecar case: the application in the same pod talks to 127.0.0.1:8080, and nothing
# else can. For a pool reached over the network, set ZOHO_PROXY_SERVER__LISTEN=0.0.0.0:8080
# together with client keys (ZOHO_PROXY_SERVER__CLIENT_KEYS_FILE), or
# ZOHO_PROXY_SERVER__ALLOW_REMOTE_WITHOUT_KEYS=true when a network policy guards the port.
# The admin listener (/livez /readyz /metrics /status; never a token) listens on every
# address so that the kubelet's probes reach it. (DL3064 flags the word TOKEN in
# ZOHO_PROXY_TOKEN__PATH: a path, not a secret. No secret is ever set here.)
# hadolint ignore=DL3064
ENV ZOHO_PROXY_SERVER__LISTEN=127.0.0.1:8080 \
    ZOHO_PROXY_SERVER__ADMIN_LISTEN=0.0.0.0:9090 \
    ZOHO_PROXY_TOKEN__PATH=/var/lib/zoho-meeting-proxy/state/token.json \
    ZOHO_PROXY_LOG__FORMAT=json \
    ZOHO_PROXY_LOG__OUTPUT=stdout

EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/zoho-meeting-proxy", "wait", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/zoho-meeting-proxy"]
CMD ["serve"]
