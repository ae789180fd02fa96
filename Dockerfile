# Build: docker build -t esim-gateway .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
COPY openapi ./openapi
RUN cargo build --release --locked && strip target/release/esim-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /src/target/release/esim-gateway /usr/local/bin/esim-gateway
USER 10001
ENV BIND_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080
# Migrations run at start; `esim-gateway migrate` runs them alone.
ENTRYPOINT ["/usr/local/bin/esim-gateway"]
CMD ["serve"]
