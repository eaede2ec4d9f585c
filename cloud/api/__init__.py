"""The cloud's HTTP interface, one router per resource: ingest, admin, plan, feed, tasks, dispatcher page."""
