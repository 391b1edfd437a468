"""Software on devices: the IC card terminal agent (readers, spool, agent) and, later, the signage player."""
