"""The built image, as a container runtime uses it: its filesystem and config (`store`), the
rules of a container made from it (`model`), and entering it (`enter`)."""
