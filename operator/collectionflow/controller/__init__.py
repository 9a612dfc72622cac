"""The flow controller, on the controller runtime (`collectionflow.runtime`). Importing
`collectionflow.controller.operator` registers kopf's startup and cleanup."""
