"""Query services over the warehouse: what people, the CLI and agents read."""
