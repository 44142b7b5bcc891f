"""Running the federation's processes, in reading order: `supervisor` (launch children, wait for their HTTP, stop
them all), `up` (`sgs up`: the whole federation on one machine), `totals` (the line of totals it prints, read from
the services' own `/metrics`), `chaos/` (fault schedules, and the targets they hit: a compose deployment or the
bench's own processes)."""
