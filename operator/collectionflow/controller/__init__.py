"""The operator's handlers. Importing `collectionflow.controller.operator` registers its kopf
startup and cleanup."""
