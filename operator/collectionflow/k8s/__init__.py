"""Gateway to the Kubernetes API."""
