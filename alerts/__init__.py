"""Notify: the HTML report, alert lifecycle, routing and senders. May import `checks`, never
`monitor`."""
