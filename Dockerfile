# syntax=docker/dockerfile:1
# The tracker's image: a static Go binary on distroless, running as the non-root user 65532.
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/deployment-tracker/deployment-tracker:v0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v0.1.0 ...
#
# The go build flags are the ones of make build: keep the two in step. The --mount=type=cache lines need
# BuildKit (the default builder of current Docker and of buildx).

ARG GO_VERSION=1.26

# The builder runs on the build host's platform and cross-compiles (CGO_ENABLED=0), so multi-platform builds
# need no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# The build context has no .git: the commit and its date are passed in (make docker-build does).
ARG COMMIT=unknown
ARG DATE=unknown
WORKDIR /src
# Use the image's Go; never download another toolchain during the build.
ENV GOTOOLCHAIN=local
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/deployment-tracker/deployment-tracker/internal/version.Version=${VERSION} -X github.com/deployment-tracker/deployment-tracker/internal/version.Commit=${COMMIT} -X github.com/deployment-tracker/deployment-tracker/internal/version.Date=${DATE}" \
      -o /out/deployment-tracker ./cmd/deployment-tracker

# static: no libc, no shell, no package manager; CA certificates and tzdata are included (HTTPS to GitHub).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
LABEL org.opencontainers.image.title="deployment-tracker" \
      org.opencontainers.image.description="Posts GitHub artifact deployment records for the pods of a Kubernetes cluster" \
      org.opencontainers.image.source="https://github.com/deployment-tracker/deployment-tracker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /out/deployment-tracker /deployment-tracker
# Numeric, so that runAsNonRoot can verify it without resolving a user name.
USER 65532:65532
# webhook (HTTPS), metrics, health probes; see deploy/40-deployment.yaml.
EXPOSE 9443 9090 8081
ENTRYPOINT ["/deployment-tracker"]
