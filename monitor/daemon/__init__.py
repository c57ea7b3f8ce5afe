"""The daemon (`featmon run`): the service (`service.Daemon`), what it runs (`jobs`: a feature
view or a model with checks), its scheduler, start-up catch-up, claims of scheduled runs
(replicas), the run recorder (buffer while the state database is down), configuration
generations and reloads, the file watcher, the log queue, the run observer, the alert runtime
(`notify`), and the process `featmon run` deploys (`process`: metrics, sidecar, signals)."""
