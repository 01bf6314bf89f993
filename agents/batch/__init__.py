"""The batch path: Faust's consumer hands each partition's records to one handler
(`consumer`), and a batch's messages go out with the producer's batch API (`sender`)."""
