# syntax=docker/dockerfile:1
# Hushflow server image: a static binary on distroless, running as nonroot.
#   docker build -t hushflow .
#   docker compose up          (PostgreSQL + server; see docker-compose.yml)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /hushflow ./cmd/hushflow
# The data directory (embedded SQLite, generated key file), owned by the
# runtime user: distroless has no shell to create it there.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /hushflow /hushflow
COPY --from=build --chown=65532:65532 /out/data /data
ENV HUSHFLOW_ADDR=0.0.0.0:8080 \
    HUSHFLOW_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/hushflow"]
CMD ["serve"]
