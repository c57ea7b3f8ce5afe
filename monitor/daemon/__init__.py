"""The daemon (`featmon run`): the service (`service.Daemon`), its scheduler,
start-up catch-up, claims of scheduled runs (replicas), the run recorder (buffer while the
state database is down), configuration generations and reloads, the file watcher, the log
queue, the run observer and the alert runtime (`notify`)."""
