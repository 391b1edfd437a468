"""The volunteer roster of each event, kept from the sns service's matching events."""
