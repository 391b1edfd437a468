"""The people directory, kept from the identity service's events."""
