# alecton operator image.
#   docker build -t ghcr.io/alecton/alecton:0.1.0 .
# Stage 1 builds the pinned helm from its Go module, stage 2 helmd (hack/helmd, the long-lived
# helm of `--helm-driver server`) on the same Helm SDK; stage 3 is a slim Python runtime with
# alecton installed, running as a non-root numeric user and needing only /tmp to be writable
# (readOnlyRootFilesystem in deploy/operator.yaml).

ARG HELM_VERSION=v4.3.1

FROM golang:1.26-bookworm AS helm
ARG HELM_VERSION
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go install -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
      "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"

FROM golang:1.26-bookworm AS helmd
ARG HELM_VERSION
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
WORKDIR /src/helmd
COPY hack/helmd/go.mod hack/helmd/go.sum ./
RUN go mod download
COPY hack/helmd/*.go ./
RUN go build -ldflags "-s -w -X main.userAgent=Helm/${HELM_VERSION#v}" -o /go/bin/helmd .

FROM python:3.11-slim-bookworm
ARG HELM_VERSION
LABEL org.opencontainers.image.title="alecton" \
      org.opencontainers.image.description="Kubernetes operator deploying CI-recorded images through Helm charts" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.alecton.helm.version="${HELM_VERSION}"

COPY --from=helm /go/bin/helm /usr/local/bin/helm
# Next to helm, where `--helm-driver server` looks for it.
COPY --from=helmd /go/bin/helmd /usr/local/bin/helmd
WORKDIR /opt/alecton
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY charts ./charts
RUN pip install --no-cache-dir . && rm -rf operator pyproject.toml README.md

USER 10001:10001
ENV HOME=/tmp TMPDIR=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["alecton"]
CMD ["operator", "run", "--probe-address=:8080", "--helm=/usr/local/bin/helm", "--charts-dir=/opt/alecton/charts"]
