"""alecton: deploy CI-recorded container images through Helm charts, as a Kubernetes operator."""

from alecton import lazy_kubernetes

__version__ = "0.1.0"

# Before anything imports kubernetes_asyncio: its generated client loads class by class
# (58 MiB and most of a second less per process; see lazy_kubernetes).
lazy_kubernetes.install()
