# syntax=docker/dockerfile:1
# One image recipe for the four MCP servers (mcp-proxmox, mcp-files, mcp-projects, mcp-voice): streamable HTTP
# at /mcp on 8765. Build from the repository root, naming the server:
#   docker build -f deploy/docker/mcp-server.Dockerfile --build-arg SERVER=mcp-files -t jarvis/mcp-files .
# mcp-voice also needs ffmpeg: --build-arg RUNTIME_PACKAGES=ffmpeg (compose.yaml passes both).
# Stages: cargo-chef plans and cooks the server's dependencies (a layer reused until Cargo.lock or a manifest
# changes), then the crate is built; the runtime is debian:bookworm-slim with the binary, running as uid 10001.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG SERVER
RUN case "${SERVER}" in mcp-proxmox|mcp-files|mcp-projects|mcp-voice) ;; \
      *) echo "SERVER must be mcp-proxmox, mcp-files, mcp-projects or mcp-voice (got '${SERVER}')" >&2; exit 1 ;; esac
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p "${SERVER}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p "${SERVER}" --bin "${SERVER}" \
    && cp "target/release/${SERVER}" /src/mcp-server

FROM debian:bookworm-slim AS runtime
ARG SERVER
ARG RUNTIME_PACKAGES=""
# RUNTIME_PACKAGES is a word list on purpose (SC2086).
# hadolint ignore=DL3008,SC2086
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 zlib1g ${RUNTIME_PACKAGES} \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin jarvis \
    && mkdir -p /data/audit /etc/jarvis \
    && chown -R jarvis:jarvis /data \
    && ln -s /usr/local/bin/mcp-server "/usr/local/bin/${SERVER}"
# The server's own name works too (`docker exec … mcp-files verify /data/audit/mcp-files.jsonl`).
COPY --from=builder /src/mcp-server /usr/local/bin/mcp-server
LABEL org.opencontainers.image.title="${SERVER}"
USER 10001:10001
WORKDIR /data
EXPOSE 8765
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8765/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mcp-server"]
# Without a command the server speaks streamable HTTP on 8765 on every interface (which needs a bearer
# token: <PREFIX>_SERVER_TOKEN). compose.yaml replaces this command and sets the same through the environment.
CMD ["--transport", "http", "--listen", "0.0.0.0", "--port", "8765", "serve"]
