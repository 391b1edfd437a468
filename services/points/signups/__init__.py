"""Sign-up for events: seats, a waitlist, cancellation (issue 17, point 7)."""
