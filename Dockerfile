# The meshtrace image: one binary on a minimal base, run as a non-root user, no shell.
#
#   docker build -t meshtrace:0.1.0 .
#   docker run -v "$PWD/kiali.yaml:/etc/kiali/config.yaml:ro" -p 20001:20001 meshtrace:0.1.0
#   docker run -v meshtrace-data:/var/lib/meshtrace -p 4317:4317 -p 4318:4318 -p 9411:9411 \
#     -p 16686:16686 -p 16685:16685 meshtrace:0.1.0 store --data-dir /var/lib/meshtrace
#
# The base images are pinned by tag. For builds that must not change under you, pin them by
# digest as well, e.g. `FROM docker.io/library/rust:1.95.0-bookworm@sha256:<digest>`, with the
# digest `docker buildx imagetools inspect <image>` prints (and let a bot such as Renovate or
# Dependabot keep it current).
#
# Build: the Rust image of the same Debian release (bookworm) as the runtime base, so the glibc
# the binary links against is the one it runs with. meshtrace uses rustls (TLS in Rust, crypto
# from aws-lc built statically), so beyond glibc and libgcc_s it needs no shared library.
FROM docker.io/library/rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# The release profile keeps line tables for backtraces and profiles; compressed, they take the
# binary from about 100 MB to about 40 MB.
RUN cargo build --release --locked -p meshtrace \
    && objcopy --compress-debug-sections=zlib target/release/meshtrace target/meshtrace \
    && install -D -m 0755 target/meshtrace /out/meshtrace \
    && install -d -m 0750 /out/data

# Run: distroless "cc" (glibc, libgcc, CA certificates, tzdata; no shell, no package manager),
# in its variant whose default user is nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/meshtrace /usr/local/bin/meshtrace
# The store's data volume, owned by the user that writes it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/meshtrace
# So that `store` without --data-dir also keeps its data (./meshtrace-data) on the volume.
WORKDIR /var/lib/meshtrace
USER 65532:65532
# 20001: the console (Kiali's port). The store: 4317 OTLP/gRPC, 4318 OTLP/HTTP, 9411 Zipkin,
# 16686 Jaeger query HTTP API, 16685 Jaeger gRPC query API (and gRPC health).
EXPOSE 20001 4317 4318 9411 16686 16685
VOLUME ["/var/lib/meshtrace"]
# SIGTERM (or SIGINT) stops meshtrace cleanly: requests in flight finish, the store flushes.
STOPSIGNAL SIGTERM
ENTRYPOINT ["meshtrace"]
# The console, reading Kiali's configuration where Kiali's ConfigMap is mounted.
CMD ["serve", "--config", "/etc/kiali/config.yaml"]
