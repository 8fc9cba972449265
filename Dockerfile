# Multi-stage build: a static stripe-operator binary on a distroless, non-root base.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY webhookreceiver/ webhookreceiver/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags='-s -w' -o stripe-operator ./cmd/stripe-operator

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/stripe-operator .
USER 65532:65532
ENTRYPOINT ["/stripe-operator"]
