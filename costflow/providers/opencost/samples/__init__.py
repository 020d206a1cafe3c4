"""Generated OpenCost data for tests and demos (`.allocations`)."""
