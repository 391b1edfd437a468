"""The bookings service (施設・設備予約): facilities with their hours, closed days and slot layout, their
availability, and bookings that never overlap."""

VERSION = "0.1.0"
