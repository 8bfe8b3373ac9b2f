"""What tests and benchmarks share to drive the product: the fake stage set, a worker against the local ARM, corpus
loaders and secret-bearing templates. Not shipped; imports the product, never tests or bench."""
