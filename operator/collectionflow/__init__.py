"""collectionflow: a Kubernetes operator that runs multi-phase collection flows as Jobs."""

__version__ = "0.1.0"
