"""Faults on a schedule: `schedule` (the spec `role:kind@T+D`, random schedules, the runner), and the targets it
drives: `compose` (a running docker compose deployment, through the Docker SDK) and `local` (the processes
`sgs bench` started, hit with signals)."""
