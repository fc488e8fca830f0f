print("cpnp-transport-bench: not implemented yet")
