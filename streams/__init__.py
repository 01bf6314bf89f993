"""The wire: topic catalogue, event and output schemas, and their codec."""
