"""Pure builders of the Kubernetes objects the operator creates. No I/O here."""
