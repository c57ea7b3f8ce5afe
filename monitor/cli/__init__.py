"""The command line: `featmon` and its commands (`main`), one module a command
where a command has more than a handler: `usage` (exit codes, the configuration's
default), `listing`, `baseline`, `health`, `schema`, `format` (the text summary)."""
