"""kopf handlers. Importing `collectionflow.handlers.operator` registers them."""
