"""The CollectionFlow API types and the CRD generated from them."""
