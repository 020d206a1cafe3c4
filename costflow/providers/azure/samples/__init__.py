"""Sample exports of this provider: generators for the demo, tests and benchmark."""
