"""alecton: deploy CI-recorded container images through Helm charts, as a Kubernetes operator."""

__version__ = "0.1.0"
