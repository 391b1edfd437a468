"""Messages that cross process boundaries, defined once: requests, replies, device messages and event payloads."""
