"""Running a node: the embedded nats-server and the supervisor of a node's processes."""
