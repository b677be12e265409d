"""Development kit: the local Kafka broker, the Redo sandbox, the demo and the event generator."""
