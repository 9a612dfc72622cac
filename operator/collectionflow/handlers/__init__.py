"""The operator's handlers. Importing `collectionflow.handlers.operator` registers its kopf
startup and cleanup."""
