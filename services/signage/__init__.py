"""The signage service (映像交流・配信): screens at city hall and 公民館, their content, schedules, emergencies
and proof of play."""

VERSION = "0.1.0"
