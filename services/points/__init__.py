"""Points service: まちづくりポイント in a double-entry ledger, credited from card taps at event terminals."""

VERSION = "0.1.0"
