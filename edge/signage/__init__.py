"""The signage player: a screen's sync, cache, kiosk page and proof of play (issue 19; docs/signage.md)."""
