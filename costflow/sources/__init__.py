"""Where billing data comes from: the source contract and the provider-neutral file readers."""
