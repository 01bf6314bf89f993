"""What production never runs: the local Kafka launcher, the demo, its console and traffic."""
